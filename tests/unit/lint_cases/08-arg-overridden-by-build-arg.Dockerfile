ARG BASE=arm32v7/busybox:1.36
FROM $BASE
CMD echo hi
# args: BASE=127.0.0.1:5000/base:latest
# expect: none
