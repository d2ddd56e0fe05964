FROM alpine:3.20
RUN apk add --no-cache ca-certificates
RUN wget -O /usr/local/bin/kubectl \
        https://dl.example.org/release/v1.30.2/bin/linux/amd64/kubectl \
    && chmod +x /usr/local/bin/kubectl
ENTRYPOINT ["kubectl"]
# ready: no  (every variant gets the amd64 kubectl)
# platforms: linux/amd64,linux/arm64
# expect: wrong-arch-binary@4
