FROM --platform=linux/amd64 debian:bookworm AS tools
RUN apt-get update && apt-get install -y --no-install-recommends jq

FROM debian:bookworm-slim
COPY --from=tools /usr/bin/jq /usr/bin/jq
# ready: no  (the jq copied is the amd64 one)
# platforms: linux/amd64,linux/arm64
# expect: pinned-stage@1
