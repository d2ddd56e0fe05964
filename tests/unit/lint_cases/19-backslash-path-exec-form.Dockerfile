FROM 127.0.0.1:5000/base:latest
ENTRYPOINT ["C:\\app\\server.exe", "--port", "80"]
# expect: windows-command-on-linux@2
