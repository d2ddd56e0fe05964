FROM 127.0.0.1:5000/base:latest
WORKDIR /app
RUN powershell -Command Invoke-WebRequest -OutFile app.zip https://example.com/app.zip
# expect: windows-command-on-linux@3
