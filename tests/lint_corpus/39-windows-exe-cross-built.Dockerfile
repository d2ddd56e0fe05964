FROM --platform=$BUILDPLATFORM tonistiigi/xx AS xx
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
COPY --from=xx / /
ARG TARGETPLATFORM
RUN xx-go build -o /out/registry ./cmd/registry \
    && if [ "$(xx-info os)" = "windows" ]; then mv /out/registry /out/registry.exe; fi

FROM scratch
COPY --from=build /out/ /
# ready: yes  (`/out/registry.exe` is a file name, not Windows syntax)
# platforms: linux/amd64,linux/arm64
# expect: none
