FROM alpine:3.20
RUN <<-EOF
	set -eu
	case "$(uname -m)" in
		x86_64) a=amd64 ;;
		aarch64) a=arm64 ;;
		*) echo "unsupported $(uname -m)"; exit 1 ;;
	esac
	wget -O /usr/local/bin/kubectl "https://dl.example.org/kubectl-linux-${a}"
	EOF
CMD ["kubectl"]
# ready: no  uname's case knows no s390x
# platforms: linux/amd64,linux/arm64,linux/s390x
# expect: unsupported-platform@4
