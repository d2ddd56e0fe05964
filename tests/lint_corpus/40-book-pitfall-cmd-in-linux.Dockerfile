FROM alpine:3.20
WORKDIR /app
COPY folder-list.sh .
RUN chmod +x folder-list.sh
CMD cmd /S /C "echo %PROCESSOR_ARCHITECTURE% && dir /B C:\app"
# ready: no  (the book's pitfall: builds, but no container of it starts)
# platforms: linux/amd64,linux/arm64
# expect: windows-command-on-linux@5 mixed-os-syntax@5
