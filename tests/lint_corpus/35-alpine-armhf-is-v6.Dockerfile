FROM alpine:3.20
RUN apkArch="$(apk --print-arch)"; \
    case "$apkArch" in \
        x86_64) f=amd64 ;; \
        aarch64) f=arm64 ;; \
        armhf) f=armv6 ;; \
        *) echo "unsupported $apkArch"; exit 1 ;; \
    esac; \
    wget -O /usr/local/bin/tini "https://dl.example.org/tini-static-$f" && chmod +x /usr/local/bin/tini
# ready: no  (Alpine's armhf is ARMv6; on arm/v7 apk prints armv7 and the case fails)
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: unsupported-platform@3
