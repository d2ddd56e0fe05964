FROM arm64v8/alpine:3.19
RUN apk add --no-cache curl
CMD echo "Built as: linux/arm64" && uname -m
# as: Dockerfile.linux-arm64
# expect: none
