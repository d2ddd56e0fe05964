# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
ENV TOOL_VERSION=1.8.2
RUN $url = ('https://dl.example.org/tool/v{0}/tool-{0}-windows-amd64.zip' -f $env:TOOL_VERSION); `
    Invoke-WebRequest -Uri $url -OutFile tool.zip; `
    Expand-Archive tool.zip -DestinationPath C:\tool; `
    Remove-Item tool.zip
ADD https://dl.example.org/agent/v2/agent_windows_x86_64.exe C:\agent\agent.exe
RUN curl.exe -fsSLo node.zip https://dl.example.org/node/v20/node-v20-win-x64.zip
CMD ["C:\\agent\\agent.exe"]
# as: Dockerfile.windows
# expect: none
