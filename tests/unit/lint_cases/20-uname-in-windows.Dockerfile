FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
WORKDIR /app
RUN uname -a
# expect: linux-command-on-windows@3
