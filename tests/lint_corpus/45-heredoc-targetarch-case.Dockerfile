# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
ARG TARGETOS TARGETARCH TARGETVARIANT
WORKDIR /src
COPY <<EOF /src/go.mod
module example.com/tool
go 1.22
EOF
COPY <<-EOT /src/main.go
	package main
	func main() {}
	EOT
RUN --mount=type=cache,target=/root/.cache/go-build <<EOF
set -eu
GOOS="$TARGETOS" GOARCH="$TARGETARCH" GOARM="${TARGETVARIANT#v}" go build -o /out/tool .
EOF

FROM alpine:3.20
ARG TARGETARCH
RUN <<SCRIPT sh
set -eu
case "$TARGETARCH" in
  amd64) triple=x86_64 ;;
  arm64) triple=aarch64 ;;
  arm) triple=armv7 ;;
  *) echo "no tini for $TARGETARCH" >&2; exit 1 ;;
esac
wget -O /sbin/tini "https://dl.example.org/tini-static-${triple}"
chmod +x /sbin/tini
SCRIPT
COPY --from=build /out/tool /usr/local/bin/tool
ENTRYPOINT ["/sbin/tini", "--", "tool"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
