FROM alpine:3.20
RUN set -eux; \
    apkArch="$(apk --print-arch)"; \
    case "$apkArch" in \
        x86_64) arch='amd64' ;; \
        aarch64) arch='arm64' ;; \
        armv7) arch='armv7' ;; \
        armhf) arch='armv6' ;; \
        x86) arch='i386' ;; \
        *) echo >&2 "unsupported: $apkArch"; exit 1 ;; \
    esac; \
    wget -O /usr/local/bin/gosu "https://dl.example.org/gosu-$arch"; chmod +x /usr/local/bin/gosu
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/arm/v6,linux/386
# expect: none
