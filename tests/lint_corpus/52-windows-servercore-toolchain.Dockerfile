# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
ENV GIT_VERSION=2.45.2
ENV GIT_DOWNLOAD_URL=https://dl.example.org/git/v${GIT_VERSION}/MinGit-${GIT_VERSION}-64-bit.zip
RUN Write-Host ('Downloading {0} ...' -f $env:GIT_DOWNLOAD_URL); `
    Invoke-WebRequest -Uri $env:GIT_DOWNLOAD_URL -OutFile 'git.zip'; `
    Expand-Archive -Path git.zip -DestinationPath C:\git; `
    Remove-Item git.zip -Force
ENV GOLANG_VERSION=1.22.5
RUN $url = ('https://dl.example.org/go/go{0}.windows-amd64.zip' -f $env:GOLANG_VERSION); `
    Invoke-WebRequest -Uri $url -OutFile 'go.zip'; `
    Expand-Archive go.zip -DestinationPath C:\; `
    Remove-Item go.zip -Force; `
    $env:PATH = 'C:\go\bin;C:\git\cmd;' + $env:PATH; `
    [Environment]::SetEnvironmentVariable('PATH', $env:PATH, [EnvironmentVariableTarget]::Machine)
WORKDIR C:\gopath
# ready: yes  (a Windows image is built for windows/amd64 on a Windows host: its amd64 zips are its own)
# as: Dockerfile.windows
# expect: none
