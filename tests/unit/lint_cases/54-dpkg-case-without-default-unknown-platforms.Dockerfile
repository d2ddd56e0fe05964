FROM debian:bookworm-slim
RUN dpkgArch="$(dpkg --print-architecture)"; \
    case "$dpkgArch" in \
      amd64) sha=1111 ;; \
      arm64) sha=2222 ;; \
      armhf) sha=3333 ;; \
    esac; \
    echo "$sha" > /checksum
# expect: arch-case-no-default@3
