FROM 127.0.0.1:5000/base:latest
ARG GOARCH=arm64
ENV LIBDIR=/usr/lib/x86_64-linux-gnu
# expect: hard-coded-arch@2 hard-coded-arch@3
