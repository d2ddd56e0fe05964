FROM ghcr.io/example/baseimage-alpine:arm64v8-3.20
ARG S6_ARCH=aarch64
RUN apk add --no-cache curl \
    && curl -fsSL -o /tmp/s6.tar.xz \
        "https://dl.example.org/s6-overlay/v3.1.6.2/s6-overlay-${S6_ARCH}.tar.xz" \
    && tar -C / -Jxpf /tmp/s6.tar.xz
COPY root/ /
# ready: yes  (its name binds it to linux/arm64)
# as: Dockerfile.aarch64
# expect: none
