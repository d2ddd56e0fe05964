FROM --platform=$BUILDPLATFORM rust:1.79 AS build
ARG TARGETARCH
RUN case "$TARGETARCH" in \
        amd64) echo x86_64-unknown-linux-musl > /target ;; \
        arm64) echo aarch64-unknown-linux-musl > /target ;; \
        *) echo "unsupported $TARGETARCH" >&2; exit 1 ;; \
    esac; rustup target add "$(cat /target)"
WORKDIR /src
COPY . .
RUN cargo build --release --target "$(cat /target)" && cp "target/$(cat /target)/release/cache" /cache

FROM scratch
COPY --from=build /cache /cache
ENTRYPOINT ["/cache"]
# ready: no  (arm/v7 is built, the case fails there)
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: unsupported-platform@3
