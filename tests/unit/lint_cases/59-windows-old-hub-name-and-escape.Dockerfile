# escape=`
ARG BASE=microsoft/windowsservercore:ltsc2019
FROM ${BASE}
RUN powershell -Command Invoke-WebRequest -Uri https://dl.example.org/lint/v1.44/lint-1.44-windows-amd64.zip -OutFile lint.zip
CMD ["cmd"]
# expect: none
