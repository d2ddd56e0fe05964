FROM docker.io/amd64/busybox
CMD ["echo", "hi"]
# expect: arch-specific-from@1
