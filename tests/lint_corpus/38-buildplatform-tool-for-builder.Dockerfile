FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS base
RUN apk add --no-cache git

FROM base AS gotestsum
RUN go install gotest.tools/gotestsum@v1.12.0

FROM base AS test
COPY --from=gotestsum /go/bin/gotestsum /usr/bin/
COPY . /src
RUN cd /src && gotestsum ./...
# ready: yes  (the tool is built for, and run by, the build machine)
# platforms: linux/amd64,linux/arm64
# expect: none
