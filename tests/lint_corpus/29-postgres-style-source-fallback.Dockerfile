FROM debian:bookworm-slim
ENV PG_MAJOR=16
RUN set -ex; \
    dpkgArch="$(dpkg --print-architecture)"; \
    case "$dpkgArch" in \
        amd64 | arm64 | ppc64el | s390x) \
            apt-get update; apt-get install -y --no-install-recommends "postgresql-$PG_MAJOR" ;; \
        *) \
            apt-get update; apt-get build-dep -y "postgresql-$PG_MAJOR"; \
            apt-get source --compile "postgresql-$PG_MAJOR" ;; \
    esac
# ready: yes  (other arches build from source: nothing fails)
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/386
# expect: none
