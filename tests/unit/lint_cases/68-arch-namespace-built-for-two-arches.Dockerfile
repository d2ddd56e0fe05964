FROM amd64/alpine:3.19
RUN apk add --no-cache ca-certificates
# platforms: linux/amd64,linux/arm64
# expect: arch-specific-from@1
