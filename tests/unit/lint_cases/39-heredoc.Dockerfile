FROM 127.0.0.1:5000/base:latest
RUN <<EOT
echo start
powershell -Command Write-Host oops
EOT
CMD echo done
# expect: windows-command-on-linux@4
