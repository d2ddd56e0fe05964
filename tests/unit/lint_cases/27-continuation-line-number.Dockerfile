FROM 127.0.0.1:5000/base:latest
RUN echo one && \
    echo two && \
    # a comment inside the continuation
    powershell -Command Write-Host three
# expect: windows-command-on-linux@5
