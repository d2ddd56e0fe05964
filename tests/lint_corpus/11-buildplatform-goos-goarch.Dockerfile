FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/proxy .

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/proxy /proxy
ENTRYPOINT ["/proxy"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7,linux/ppc64le
# expect: none
