FROM --platform=$BUILDPLATFORM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/proxy .

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/proxy /proxy
ENTRYPOINT ["/proxy"]
# ready: no  (every variant gets the build machine's binary)
# platforms: linux/amd64,linux/arm64
# expect: build-stage-ignores-target@4
