FROM 127.0.0.1:5000/base:latest
COPY app.conf.in /etc/app.conf.in
RUN sed -e "s/%VERSION%/1.2.3/" /etc/app.conf.in > /etc/app.conf \
 && echo 'literal %NOT_A_VAR% text' > /etc/motd
CMD echo %PATH%
# expect: windows-command-on-linux@5 mixed-os-syntax@5
