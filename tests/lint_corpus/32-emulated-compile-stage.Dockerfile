FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app .

FROM alpine:3.20
COPY --from=build /out/app /usr/bin/app
# ready: yes  (correct, only slow: each foreign platform compiles under emulation)
# platforms: linux/amd64,linux/arm64
# expect: missing-buildplatform@1
