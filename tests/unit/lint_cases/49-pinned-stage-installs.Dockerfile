FROM --platform=linux/amd64 127.0.0.1:5000/base:latest AS tools
RUN apk add --no-cache jq
FROM 127.0.0.1:5000/base:latest
COPY --from=tools /usr/bin/jq /usr/bin/jq
# platforms: linux/amd64,linux/arm64
# expect: pinned-stage@1
