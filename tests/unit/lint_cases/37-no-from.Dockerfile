ARG VERSION=1
WORKDIR /app
# expect: dockerfile-syntax@2 dockerfile-syntax@2
