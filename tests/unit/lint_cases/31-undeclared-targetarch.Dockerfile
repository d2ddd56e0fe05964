FROM 127.0.0.1:5000/base:latest
RUN echo "building for ${TARGETARCH}" > /built-for
# expect: undeclared-platform-arg@2
