FROM 127.0.0.1:5000/base:latest
RUN cmd /S /C echo hello
# expect: windows-command-on-linux@2
