FROM registry.k8s.io/pause-amd64:3.1
# expect: arch-specific-from@1
