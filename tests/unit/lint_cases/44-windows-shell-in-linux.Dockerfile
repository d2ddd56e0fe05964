FROM 127.0.0.1:5000/base:latest
SHELL ["powershell", "-Command"]
# expect: windows-command-on-linux@2
