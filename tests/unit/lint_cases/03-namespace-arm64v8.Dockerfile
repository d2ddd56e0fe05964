FROM arm64v8/alpine:3.19
RUN echo ok
# expect: arch-specific-from@1
