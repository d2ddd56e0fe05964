# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN ls C:\; cat C:\Windows\win.ini
CMD ["powershell", "-Command", "Get-ChildItem", "C:\\app"]
# expect: none
