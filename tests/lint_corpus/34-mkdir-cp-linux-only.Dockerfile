FROM python:3.12-slim
RUN mkdir -p /app/data && cp /etc/ssl/certs/ca-certificates.crt /app/data/
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
CMD ["python", "-m", "app"]
# ready: yes  (Linux only: the book's WORKDIR/COPY hint does not apply)
# platforms: linux/amd64,linux/arm64
# expect: none
