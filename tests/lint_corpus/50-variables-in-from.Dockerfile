ARG BASE=alpine
ARG TAG=3.20
ARG HELPER=busybox:1.36
FROM ${BASE}:${TAG} AS runtime-base
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG} AS fetch
ARG TARGETOS TARGETARCH
RUN wget -O /tool "https://dl.example.org/tool-${TARGETOS}-${TARGETARCH}" && chmod +x /tool
FROM ${HELPER} AS helper
FROM runtime-base
COPY --from=fetch --chmod=755 /tool /usr/local/bin/tool
COPY --from=helper /bin/busybox /bin/busybox
COPY --from=busybox:1.36 /bin/sh /bin/sh-static
ENTRYPOINT ["tool"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
