FROM --platform=linux/amd64 ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates
CMD ["bash"]
# ready: no  (the final image is pinned to amd64)
# platforms: linux/amd64,linux/arm64
# expect: arch-specific-from@1
