FROM 127.0.0.1:5000/base:latest AS base
WORKDIR /app
FROM base AS test
RUN echo test
FROM base
CMD echo hi
# expect: none
