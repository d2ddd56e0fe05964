FROM debian:bookworm-slim
ARG TARGETARCH
ENV ARCH=${TARGETARCH}
RUN case "$ARCH" in \
      amd64) url=https://dl.example.org/v3/tool-linux-amd64.tar.gz ;; \
      arm64) url=https://dl.example.org/v3/tool-linux-arm64.tar.gz ;; \
      *) echo "unsupported architecture: $ARCH" >&2; exit 1 ;; \
    esac \
 && curl -fsSL "$url" | tar -xz -C /usr/local/bin
RUN if [ "$ARCH" = "arm64" ]; then \
      curl -fsSLo /usr/local/bin/helper https://dl.example.org/helper-aarch64; \
    else \
      curl -fsSLo /usr/local/bin/helper https://dl.example.org/helper-x86_64; \
    fi
# platforms: linux/amd64,linux/arm64
# expect: none
