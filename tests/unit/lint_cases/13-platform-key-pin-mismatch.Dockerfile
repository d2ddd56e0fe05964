FROM --platform=linux/arm64 127.0.0.1:5000/base:latest
CMD uname -m
# platform: linux/arm/v7
# expect: from-platform-mismatch@1
