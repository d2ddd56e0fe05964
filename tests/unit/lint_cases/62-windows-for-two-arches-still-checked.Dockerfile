FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
ADD https://dl.example.org/releases/v3/app_windows_amd64.exe C:/app/app.exe
ENTRYPOINT ["C:/app/app.exe"]
# platforms: windows/amd64,windows/arm64
# expect: wrong-arch-binary@2
