FROM debian:bookworm-slim
ENV GOSU_VERSION=1.17
RUN set -eux; \
    dpkgArch="$(dpkg --print-architecture | awk -F- '{ print $NF }')"; \
    case "$dpkgArch" in \
        amd64) sha256=aaaa ;; \
        arm64) sha256=bbbb ;; \
        armhf) sha256=cccc ;; \
    esac; \
    curl -fsSLo /usr/local/bin/gosu "https://dl.example.org/gosu/$GOSU_VERSION/gosu-$dpkgArch"; \
    echo "$sha256 */usr/local/bin/gosu" | sha256sum -c -; \
    chmod +x /usr/local/bin/gosu
# ready: no  (s390x matches no branch: sha256 is empty and the check fails, or worse)
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/s390x
# expect: unsupported-platform@5
