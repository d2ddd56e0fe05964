FROM mcr.microsoft.com/windows/servercore:ltsc2019
CMD ["sh", "-c", "ls /app"]
# expect: linux-command-on-windows@2
