FROM debian:bookworm-slim
ARG TARGETARCH
RUN case "$TARGETARCH" in \
      amd64|arm64) curl -fsSLo /usr/local/bin/tool "https://dl.example.org/tool-$TARGETARCH" ;; \
      *) apt-get update && apt-get install -y golang && go install example.org/tool@v1 ;; \
    esac
RUN case "$TARGETARCH" in \
      arm) export EXTRA_CFLAGS=-mfpu=neon ;; \
      *) ;; \
    esac; make
# platforms: linux/amd64,linux/arm64,linux/s390x
# expect: none
