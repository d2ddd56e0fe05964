FROM quay.io/example/busybox:latest
ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/server /bin/server
COPY config/server.yml /etc/server/server.yml
ENTRYPOINT ["/bin/server"]
# ready: no  (ARCH is the same build arg for every platform: amd64 binaries everywhere)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@4
