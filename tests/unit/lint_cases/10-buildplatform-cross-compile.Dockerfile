FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY . .
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .

FROM 127.0.0.1:5000/base:latest
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
# expect: none
