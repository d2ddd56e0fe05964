# escape=`
FROM 127.0.0.1:5000/team/build-base:2024
RUN curl.exe -fsSLo C:\tools\jq.exe https://dl.example.org/jq/1.7/jq-windows-amd64.exe
WORKDIR C:\app
# expect: none
