# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN Invoke-WebRequest -OutFile C:\node.zip https://dl.example.org/node-v20.15.0-win-x64.zip; `
    Expand-Archive C:\node.zip -DestinationPath C:\; `
    Remove-Item C:\node.zip
ENV NODE_ARCH=x64
CMD ["node.exe"]
# ready: yes  (Windows only, amd64 only: x64 is every variant's own)
# platforms: windows/amd64
# expect: none
