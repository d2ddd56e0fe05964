FROM mcr.microsoft.com/powershell:lts-debian-12
SHELL ["pwsh", "-Command"]
RUN Write-Host hello
# platforms: linux/amd64,linux/arm64
# expect: none
