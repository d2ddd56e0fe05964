FROM --platform=$BUILDPLATFORM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app .

FROM 127.0.0.1:5000/base:latest
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
# expect: build-stage-ignores-target@4
