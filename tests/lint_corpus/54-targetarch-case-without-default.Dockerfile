FROM alpine:3.20
ARG TARGETARCH
ARG DUMB_INIT_VERSION=1.2.5
RUN set -eux; \
    case "${TARGETARCH}" in \
        amd64) arch=x86_64 ;; \
        arm64) arch=aarch64 ;; \
    esac; \
    wget -qO /usr/local/bin/dumb-init "https://dl.example.org/dumb-init/v${DUMB_INIT_VERSION}/dumb-init_${DUMB_INIT_VERSION}_${arch}"; \
    chmod +x /usr/local/bin/dumb-init
ENTRYPOINT ["/usr/local/bin/dumb-init", "--"]
# ready: yes  (both platforms built have a branch; the hint: a third one would pass silently)
# platforms: linux/amd64,linux/arm64
# expect: arch-case-no-default@5
