FROM amd64/alpine:3.19
RUN apk add --no-cache ca-certificates
# platforms: linux/amd64
# expect: none
