FROM golang:1.22
WORKDIR /src
COPY . .
RUN make cross

FROM alpine:3.20
COPY --from=0 /src/bin/linux-amd64/app /app
ENTRYPOINT ["/app"]
# ready: no  (every variant gets the linux-amd64 build)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@7
