FROM 127.0.0.1:5000/base:latest
HEALTHCHECK --interval=30s CMD cmd /c if exist %TEMP%\ok exit 0
# expect: windows-command-on-linux@2
