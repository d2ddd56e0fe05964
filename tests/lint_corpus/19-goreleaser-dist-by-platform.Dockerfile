FROM alpine:3.20
RUN apk add --no-cache ca-certificates tzdata
ARG TARGETPLATFORM
COPY ./dist/$TARGETPLATFORM/router /usr/local/bin/router
EXPOSE 80 443
ENTRYPOINT ["/usr/local/bin/router"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
