FROM ghcr.io/example/baseimage-ubuntu:arm32v7-noble
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
    && curl -fsSL https://dl.example.org/app-armhf.tar.gz | tar -xz -C /app
# ready: yes  (its name binds it to linux/arm/v7)
# as: Dockerfile.armhf
# expect: none
