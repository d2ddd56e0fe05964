FROM 127.0.0.1:5000/base:latest
ARG TARGETARCH
RUN case "$TARGETARCH" in \
      amd64|arm64) echo ok ;; \
      *) exit 1 ;; \
    esac
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: unsupported-platform@3
