FROM --platform=linux/amd64 golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/server .

FROM alpine:3.20
COPY --from=build /out/server /usr/bin/server
CMD ["server"]
# ready: no  (the arm64 variant gets the amd64 server)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@7
