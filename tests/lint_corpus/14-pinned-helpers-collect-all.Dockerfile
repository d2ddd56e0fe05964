FROM --platform=amd64 alpine:3.20 AS tool-amd64
RUN wget -O /tool https://dl.example.org/tool-linux-amd64 && chmod +x /tool

FROM --platform=arm64 alpine:3.20 AS tool-arm64
RUN wget -O /tool https://dl.example.org/tool-linux-arm64 && chmod +x /tool

FROM alpine:3.20
ARG TARGETARCH
COPY --from=tool-amd64 /tool /opt/tools/amd64/tool
COPY --from=tool-arm64 /tool /opt/tools/arm64/tool
RUN ln -s "/opt/tools/${TARGETARCH}/tool" /usr/local/bin/tool
# ready: yes  (every variant collects both binaries and links its own)
# platforms: linux/amd64,linux/arm64
# expect: none
