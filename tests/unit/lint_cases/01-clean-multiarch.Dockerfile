FROM 127.0.0.1:5000/base:latest
WORKDIR /app
COPY . .
CMD echo hello from every platform
# expect: none
