FROM scratch
COPY app /app
ENTRYPOINT ["/app"]
# expect: none
