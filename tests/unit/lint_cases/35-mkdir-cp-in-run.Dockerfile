FROM 127.0.0.1:5000/base:latest
RUN mkdir /app
RUN cp /etc/hosts /app/hosts.txt
# Linux only: mkdir and cp are fine there, the book's hint does not apply.
# expect: none
