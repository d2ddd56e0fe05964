FROM --platform=$BUILDPLATFORM debian:bookworm AS cross
ARG TARGETARCH
RUN dpkg --add-architecture arm64 && dpkg --add-architecture amd64 \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc-aarch64-linux-gnu gcc-x86-64-linux-gnu g++-mingw-w64-x86-64 \
        libseccomp-dev:arm64 libseccomp-dev:amd64 crossbuild-essential-arm64
WORKDIR /src
COPY . .
RUN case "$TARGETARCH" in \
        amd64) CC=x86_64-linux-gnu-gcc ;; \
        arm64) CC=aarch64-linux-gnu-gcc ;; \
        *) echo "unsupported $TARGETARCH"; exit 1 ;; \
    esac; make CC="$CC" OUT=/out/runtime

FROM debian:bookworm-slim
COPY --from=cross /out/runtime /usr/bin/runtime
# ready: yes  (arch words name cross toolchains and foreign-arch packages)
# platforms: linux/amd64,linux/arm64
# expect: none
