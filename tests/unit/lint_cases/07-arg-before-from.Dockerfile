ARG BASE=arm32v7/busybox:1.36
ARG VERSION=1
FROM ${BASE}
LABEL version=$VERSION
# expect: arch-specific-from@3
