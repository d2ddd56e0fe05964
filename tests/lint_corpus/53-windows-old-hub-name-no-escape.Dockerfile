FROM microsoft/windowsservercore
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN pushd C:\; \
    curl.exe -sfL https://dl.example.org/lint/v1.59.1/lint-1.59.1-windows-amd64.zip -o lint.zip; \
    Expand-Archive lint.zip -DestinationPath C:\lint; \
    popd
ADD https://dl.example.org/docker/v26/docker-26.1.4_x86_64.exe C:\Windows\docker.exe
CMD ["powershell"]
# ready: yes  (microsoft/windowsservercore is Windows: amd64 only)
# expect: none
