FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app ./cmd/app
FROM alpine:3.20
ARG
COPY --from=build /out/app
ENV
ENTRYPOINT ["/usr/local/bin/app"]
RUN \
# as: Dockerfile.linux-amd64
# expect: dockerfile-syntax@6 dockerfile-syntax@7 dockerfile-syntax@8 dockerfile-syntax@10
