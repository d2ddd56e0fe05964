FROM mcr.microsoft.com/windows/servercore:ltsc2022-amd64
SHELL ["powershell", "-Command"]
RUN Write-Host "setting up"; New-Item -ItemType Directory C:\app
# platforms: windows/amd64
# expect: none
