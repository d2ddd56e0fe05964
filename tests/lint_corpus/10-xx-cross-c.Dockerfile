FROM --platform=$BUILDPLATFORM tonistiigi/xx AS xx

FROM --platform=$BUILDPLATFORM alpine:3.20 AS build
COPY --from=xx / /
RUN apk add --no-cache clang lld make
ARG TARGETPLATFORM
RUN xx-apk add --no-cache gcc musl-dev zlib-dev
WORKDIR /src
COPY . .
RUN xx-clang -o /out/daemon daemon.c -lz && xx-verify /out/daemon

FROM alpine:3.20
RUN apk add --no-cache zlib
COPY --from=build /out/daemon /usr/sbin/daemon
CMD ["daemon", "-f"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
