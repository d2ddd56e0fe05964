FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app .

FROM 127.0.0.1:5000/base:latest
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
# expect: missing-buildplatform@1
