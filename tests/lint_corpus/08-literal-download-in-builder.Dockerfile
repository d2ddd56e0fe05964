FROM alpine:3.20 AS fetch
RUN wget -O /helm.tgz https://dl.example.org/helm-v3.15.0-linux-amd64.tar.gz && tar -xzf /helm.tgz -C /

FROM alpine:3.20
COPY --from=fetch /linux-amd64/helm /usr/local/bin/helm
# ready: no  (the final image copies the amd64 helm)
# platforms: linux/amd64,linux/arm64
# expect: hard-coded-arch@2 wrong-arch-binary@5
