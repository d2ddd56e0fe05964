FROM --platform=linux/amd64 127.0.0.1:5000/base:latest
CMD echo hi
# expect: arch-specific-from@1
