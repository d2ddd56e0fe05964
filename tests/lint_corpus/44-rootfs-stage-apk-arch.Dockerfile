FROM alpine:3.20 AS rootfs-stage
ARG ARCH=x86_64
ENV ROOTFS=/root-out
RUN apk add --no-cache bash xz \
    && mkdir -p "$ROOTFS/etc/apk" \
    && apk --root "$ROOTFS" --no-cache --keys-dir /etc/apk/keys add --arch ${ARCH} --initdb alpine-baselayout busybox

FROM scratch
COPY --from=rootfs-stage /root-out/ /
CMD ["/bin/sh"]
# ready: no  (a base image's per-arch rootfs: built multi-arch, every variant gets x86_64 packages)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@6
