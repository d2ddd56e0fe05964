FROM 127.0.0.1:5000/base:latest
RUN mkdir app
# platforms: linux/amd64,windows/amd64
# expect: prefer-workdir-copy@2
