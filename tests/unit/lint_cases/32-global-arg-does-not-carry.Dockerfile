ARG TARGETPLATFORM
FROM 127.0.0.1:5000/base:latest
WORKDIR /app
RUN echo $TARGETPLATFORM > platform.txt
# expect: undeclared-platform-arg@4
