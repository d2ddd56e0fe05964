# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG XX_VERSION=1.4.0

FROM --platform=$BUILDPLATFORM tonistiigi/xx:${XX_VERSION} AS xx

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS gobase
COPY --from=xx / /
RUN apk add --no-cache file git
ENV CGO_ENABLED=0
WORKDIR /src

FROM gobase AS build
ARG TARGETPLATFORM
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache \
    xx-go build -trimpath -o /out/app ./cmd/app && xx-verify --static /out/app

FROM scratch AS binary
COPY --from=build /out/app /app

FROM alpine:3.20
COPY --from=build /out/app /usr/bin/app
ENTRYPOINT ["app"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/s390x
# expect: none
