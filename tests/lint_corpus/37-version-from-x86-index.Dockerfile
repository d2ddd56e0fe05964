FROM ghcr.io/example/baseimage-alpine-nginx:3.20
ARG NGINX_VERSION
RUN if [ -z ${NGINX_VERSION+x} ]; then \
      NGINX_VERSION=$(curl -sL "http://dl-cdn.example.org/alpine/v3.20/main/x86_64/APKINDEX.tar.gz" | tar -xz -C /tmp \
      && awk '/^P:nginx$/,/V:/' /tmp/APKINDEX | sed -n 2p | sed 's/^V://'); \
    fi \
    && apk add --no-cache "nginx==${NGINX_VERSION}"
# ready: yes  (the x86_64 index is read for a version number, the same on every arch)
# platforms: linux/amd64,linux/arm64
# expect: none
