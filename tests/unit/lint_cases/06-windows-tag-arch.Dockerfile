# escape=`
FROM diamol/base:windows-amd64
WORKDIR C:\app
CMD echo %PROCESSOR_ARCHITECTURE% && dir /B C:\app
# expect: arch-specific-from@2
