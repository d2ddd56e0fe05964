FROM alpine:3.20
ARG TARGETARCH
ARG KUBECTL_VERSION=v1.30.2
RUN wget -O /usr/local/bin/kubectl \
        "https://dl.example.org/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl" \
    && chmod +x /usr/local/bin/kubectl
ENTRYPOINT ["kubectl"]
# ready: yes
# platforms: linux/amd64,linux/arm64
# expect: none
