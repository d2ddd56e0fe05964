FROM ghcr.io/example/baseimage-ubuntu:noble
ENV DOWNLOAD_BASE="https://downloads.example.org/media-server" \
    SERVER_ARCH="amd64"
ARG SERVER_RELEASE=1.40.2
RUN curl -o /tmp/server.deb -L \
        "${DOWNLOAD_BASE}/${SERVER_RELEASE}/debian/media-server_${SERVER_RELEASE}_${SERVER_ARCH}.deb" \
    && dpkg -i /tmp/server.deb
# ready: no  (an amd64 per-arch file: built multi-arch, every variant gets the amd64 package)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@6
