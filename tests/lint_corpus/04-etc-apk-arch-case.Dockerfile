FROM alpine:3.20
ENV SERVER_VERSION=1.27.0
RUN set -x \
    && apkArch="$(cat /etc/apk/arch)" \
    && case "$apkArch" in \
        x86_64|aarch64) apk add --no-cache "server=${SERVER_VERSION}-r1" ;; \
        *) apk add --no-cache --virtual .build-deps gcc make && make -C /src install ;; \
    esac
EXPOSE 80
# ready: yes  (the case builds from source where no package exists: no failing branch)
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/s390x
# expect: none
