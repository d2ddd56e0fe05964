FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
ENTRYPOINT ["/bin/app"]
# expect: linux-command-on-windows@2
