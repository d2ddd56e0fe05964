# syntax=docker/dockerfile:1
FROM alpine:3.20
ARG TARGETARCH
RUN <<EOF
set -e
wget -O /tmp/t.tgz "https://dl.example.org/t-${TARGETARCH}.tgz"
EOF
RUN <<EOF
wget -O /usr/local/bin/jq https://dl.example.org/jq-linux-amd64
chmod +x /usr/local/bin/jq
EOF
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@9
