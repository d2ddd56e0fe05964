FROM debian:bookworm-slim
RUN set -eux; \
    dpkgArch="$(dpkg --print-architecture)"; \
    case "$dpkgArch" in \
        amd64) sha=1111 ;; \
        arm64) sha=2222 ;; \
        *) echo >&2 "unsupported: $dpkgArch"; exit 1 ;; \
    esac; \
    curl -fsSL "https://dl.example.org/db-${dpkgArch}.deb" -o db.deb; echo "$sha db.deb" | sha256sum -c -
# ready: no  (ppc64le is built, the case fails there)
# platforms: linux/amd64,linux/arm64,linux/ppc64le
# expect: unsupported-platform@4
