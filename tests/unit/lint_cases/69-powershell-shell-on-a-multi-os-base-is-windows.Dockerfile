FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build
SHELL ["powershell", "-NoProfile", "-Command"]
WORKDIR C:\src
RUN Get-ChildItem C:\src; Write-Host done
# expect: none
