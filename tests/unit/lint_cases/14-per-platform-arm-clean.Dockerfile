FROM --platform=linux/arm/v7 127.0.0.1:5000/base:latest
ENV EXPECTED_MACHINE=armv7l
CMD echo "Built as: linux/arm" && uname -m
# as: Dockerfile.linux-arm
# expect: none
