FROM ghcr.io/example/baseimage-alpine:amd64-3.20
RUN apk add --no-cache curl
COPY root/ /
# ready: no  (the amd64 base would be used for every platform)
# platforms: linux/amd64,linux/arm64
# expect: arch-specific-from@1
