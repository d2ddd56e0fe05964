FROM debian:bookworm-slim
ARG TARGETARCH
RUN set -eux; \
    case "${TARGETARCH}" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
    esac; \
    curl -fsSLo /usr/local/bin/yq "https://dl.example.org/yq_linux_${arch}"
# platforms: linux/amd64,linux/arm64,linux/ppc64le
# expect: unsupported-platform@4
