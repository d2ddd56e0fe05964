FROM 127.0.0.1:5000/base:latest
RUNN echo typo
# expect: dockerfile-syntax@2
