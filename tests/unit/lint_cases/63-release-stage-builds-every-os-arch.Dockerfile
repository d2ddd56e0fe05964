FROM --platform=$BUILDPLATFORM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN for p in linux/amd64 linux/arm64 windows/amd64 darwin/arm64; do \
      GOOS=${p%/*} GOARCH=${p#*/} go build -o /out/app-${p%/*}-${p#*/} . ; \
    done
FROM scratch
COPY --from=build /out/ /
# platforms: linux/amd64,linux/arm64
# expect: none
