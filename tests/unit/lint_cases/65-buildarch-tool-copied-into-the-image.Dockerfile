FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG BUILDARCH
RUN GOARCH=$BUILDARCH go build -o /out/app .
FROM alpine:3.20
COPY --from=build /out/app /app
# platforms: linux/amd64,linux/arm64
# expect: build-stage-ignores-target@3
