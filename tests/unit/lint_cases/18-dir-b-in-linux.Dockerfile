FROM alpine:3.19
WORKDIR /app
ENTRYPOINT dir /B
# expect: windows-command-on-linux@3
