FROM debian:bookworm-slim
ENV TOOL_VERSION=1.22.4
RUN set -eux; \
    dpkgArch="$(dpkg --print-architecture)"; \
    case "${dpkgArch##*-}" in \
        amd64) url="https://dl.example.org/tool${TOOL_VERSION}.linux-amd64.tar.gz" ;; \
        arm64) url="https://dl.example.org/tool${TOOL_VERSION}.linux-arm64.tar.gz" ;; \
        armhf) url="https://dl.example.org/tool${TOOL_VERSION}.linux-armv6l.tar.gz" ;; \
        i386) url="https://dl.example.org/tool${TOOL_VERSION}.linux-386.tar.gz" ;; \
        *) echo >&2 "error: unsupported architecture '$dpkgArch'"; exit 1 ;; \
    esac; \
    curl -fsSL "$url" -o tool.tgz; tar -C /usr/local -xzf tool.tgz; rm tool.tgz
CMD ["tool", "version"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/386
# expect: none
