FROM amd64/ubuntu:22.04
RUN apt-get update && apt-get install -y --no-install-recommends curl
CMD ["bash"]
# ready: no  (amd64/ is one architecture's namespace)
# platforms: linux/amd64,linux/arm64
# expect: arch-specific-from@1
