FROM debian:bookworm-slim
ARG TARGETARCH
RUN <<EOF bash
set -euo pipefail
case "${TARGETARCH}" in
  amd64) arch=x86_64 ;;
  arm64) arch=aarch64 ;;
  *) echo "unsupported: ${TARGETARCH}" >&2; exit 1 ;;
esac
curl -fsSLo /usr/local/bin/jq "https://dl.example.org/jq-linux-${arch}"
chmod +x /usr/local/bin/jq
EOF
CMD ["jq", "--version"]
# ready: no  the heredoc's case has no branch for ppc64le
# platforms: linux/amd64,linux/arm64,linux/ppc64le
# expect: unsupported-platform@5
