ARG TARGETARCH
FROM alpine:3.20
RUN wget -O /usr/local/bin/yq "https://dl.example.org/yq_linux_${TARGETARCH}" && chmod +x /usr/local/bin/yq
# ready: no  ($TARGETARCH is empty inside the stage)
# platforms: linux/amd64,linux/arm64
# expect: undeclared-platform-arg@3
