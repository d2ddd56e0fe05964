FROM nginx:1.27-alpine
ARG VERSION=2.4.0
RUN set -eux; \
    mkdir -p /usr/share/nginx/html/dl; \
    cd /usr/share/nginx/html/dl; \
    for f in cli-linux-amd64.tar.gz cli-linux-arm64.tar.gz; do \
        wget -q "https://dl.example.org/cli/v${VERSION}/$f"; \
    done; \
    wget -q "https://dl.example.org/cli/v${VERSION}/cli-darwin-arm64.tar.gz"; \
    wget -q "https://dl.example.org/cli/v${VERSION}/cli-windows-amd64.zip"
COPY index.html /usr/share/nginx/html/
# ready: yes  (every architecture's file, served as downloads: the same on each variant on purpose)
# platforms: linux/amd64,linux/arm64
# expect: none
