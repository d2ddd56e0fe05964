FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
CMD echo %COMPUTERNAME% && uname -a
# expect: linux-command-on-windows@2 mixed-os-syntax@2
