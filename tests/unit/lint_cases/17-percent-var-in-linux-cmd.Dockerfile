FROM alpine:3.19
CMD echo Running on %PROCESSOR_ARCHITECTURE%
# expect: windows-command-on-linux@2
