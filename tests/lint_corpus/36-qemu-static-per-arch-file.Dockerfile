FROM ghcr.io/example/qemu-user-static:x86_64-aarch64 AS qemu
FROM arm64v8/alpine:3.20
COPY --from=qemu /usr/bin/qemu-aarch64-static /usr/bin/
RUN apk add --no-cache tzdata
# ready: no  (linted as multi-arch: arm64v8/alpine is one architecture, the qemu helper is for amd64 hosts)
# platforms: linux/amd64,linux/arm64
# expect: arch-specific-from@1 arch-specific-from@2 wrong-arch-binary@3
