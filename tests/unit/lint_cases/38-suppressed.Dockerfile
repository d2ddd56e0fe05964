FROM 127.0.0.1:5000/base:latest
# farm-lint: ignore=hard-coded-arch
ENV QEMU_ARCH=aarch64
RUN mkdir /data
# farm-lint: ignore-file=prefer-workdir-copy
# expect: none
