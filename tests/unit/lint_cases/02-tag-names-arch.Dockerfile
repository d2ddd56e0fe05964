# the book's per-platform base, used in a multi-arch Dockerfile
FROM diamol/base:linux-arm64
WORKDIR /app
CMD echo hi
# expect: arch-specific-from@2
