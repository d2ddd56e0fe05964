FROM 127.0.0.1:5000/base:latest
RUN wget -O /tmp/tool.tgz \
      https://example.com/releases/tool-1.2-linux-amd64.tar.gz
# expect: wrong-arch-binary@3
