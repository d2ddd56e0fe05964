FROM 127.0.0.1:5000/base:latest
RUN date +%Y%m%d > /build-date && printf '%s%%\n' 100
# expect: none
