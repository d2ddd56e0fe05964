FROM debian:bookworm-slim
ARG TARGETPLATFORM
RUN case "$TARGETPLATFORM" in \
        linux/amd64) a=x86_64 ;; \
        linux/arm64) a=aarch64 ;; \
        linux/arm/v7) a=armv7 ;; \
        linux/arm/v6) a=armv6 ;; \
        */386) a=i686 ;; \
        *) echo "unsupported: $TARGETPLATFORM" >&2; exit 1 ;; \
    esac; \
    curl -fsSL "https://dl.example.org/s6-overlay-${a}.tar.xz" | tar -C / -Jx
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/arm/v6,linux/386
# expect: none
