# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
RUN Invoke-WebRequest -Uri https://dl.example.org/tool-windows-amd64.zip `
      -OutFile C:\tool.zip ; `
    Expand-Archive C:\tool.zip -DestinationPath C:\tool ; `
    Remove-Item C:\tool.zip
COPY app C:\app\
WORKDIR C:\app
CMD ["C:\\app\\app.exe", "--listen", ":8080"]
# ready: yes  one Windows platform, backtick continuations, backslash paths
# platforms: windows/amd64
# expect: none
