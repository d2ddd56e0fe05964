FROM amd64/alpine:3.19
CMD uname -m
# as: Dockerfile.linux-arm64
# expect: from-platform-mismatch@1
