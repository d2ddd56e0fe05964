FROM 127.0.0.1:5000/base:latest
RUN uname -a
# platforms: linux/amd64,windows/amd64
# expect: linux-command-on-windows@2
