FROM 127.0.0.1:5000/base:latest
RUN mkdir /app
RUN cp /etc/hosts /app/hosts.txt
# expect: prefer-workdir-copy@2 prefer-workdir-copy@3
