FROM alpine:3.20
ARG ARCH=x86_64
ARG S6_VERSION=3.1.6.2
RUN apk add --no-cache --arch ${ARCH} bash curl \
    && curl -fsSL -o /tmp/s6.tar.xz \
        "https://dl.example.org/s6-overlay/v${S6_VERSION}/s6-overlay-${ARCH}.tar.xz" \
    && tar -C / -Jxpf /tmp/s6.tar.xz
# ready: no  (a per-architecture file built as multi-arch: x86_64 everywhere)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@4
