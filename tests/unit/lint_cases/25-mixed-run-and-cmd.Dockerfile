FROM 127.0.0.1:5000/base:latest
WORKDIR /app
RUN uname -a
CMD echo %PROCESSOR_ARCHITECTURE%
# expect: windows-command-on-linux@4 mixed-os-syntax@4
