FROM debian:bookworm-slim
RUN set -eux; \
    # comments and blank lines inside a continuation are dropped by the parser
    apt-get update; \

    apt-get install -y --no-install-recommends \
        ca-certificates \
        curl \
    ; \
    dpkgArch="$(dpkg --print-architecture)"; \
    case "${dpkgArch##*-}" in \
        amd64) url='https://dl.example.org/app-x86_64.tgz' ;; \
        arm64) url='https://dl.example.org/app-aarch64.tgz' ;; \
        armhf) url='https://dl.example.org/app-armv7.tgz' ;; \
        *) echo >&2 "unsupported architecture: $dpkgArch"; exit 1 ;; \
    esac; \
    curl -fsSL "$url" | tar -xz -C /usr/local/bin; \
    rm -rf /var/lib/apt/lists/*
CMD ["app"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
