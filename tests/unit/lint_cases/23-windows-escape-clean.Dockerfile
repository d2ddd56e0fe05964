# escape=`
FROM mcr.microsoft.com/windows/nanoserver:1809
WORKDIR C:\app
COPY file.txt .
CMD echo Built as: windows/amd64 && `
    echo %PROCESSOR_ARCHITECTURE% %PROCESSOR_IDENTIFIER% && `
    dir /B C:\app
# as: Dockerfile.windows-amd64
# expect: none
