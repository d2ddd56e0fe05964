FROM mcr.microsoft.com/powershell:lts-nanoserver-1809
RUN apk add curl
# as: Dockerfile.windows-amd64
# expect: linux-command-on-windows@2
