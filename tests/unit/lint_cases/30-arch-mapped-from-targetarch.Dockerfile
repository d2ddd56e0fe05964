FROM 127.0.0.1:5000/base:latest
ARG TARGETARCH
RUN case "$TARGETARCH" in \
      amd64) echo x86_64 > /arch ;; \
      arm64) echo aarch64 > /arch ;; \
      arm) echo armv7l > /arch ;; \
    esac
# expect: arch-case-no-default@3
