FROM alpine:3.20
RUN case "$(uname -m)" in \
      x86_64) tini=amd64 ;; \
      aarch64) tini=arm64 ;; \
    esac \
 && wget -O /sbin/tini "https://dl.example.org/tini-static-${tini}" \
 && chmod +x /sbin/tini
ENTRYPOINT ["/sbin/tini", "--"]
# platforms: linux/amd64,linux/arm64
# expect: arch-case-no-default@2
