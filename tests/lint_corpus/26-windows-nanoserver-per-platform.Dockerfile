# escape=`
FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
WORKDIR C:\app
COPY bin\release\app.exe .
CMD ["cmd", "/S", "/C", "app.exe --port %PORT%"]
# ready: yes  (its name binds it to windows/amd64)
# as: Dockerfile.windows-amd64
# expect: none
