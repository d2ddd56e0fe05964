FROM node:20-alpine AS base
ONBUILD COPY package*.json ./
ONBUILD RUN npm ci --omit=dev
onbuild copy . .

from base
run echo "instructions are case-insensitive"
Env NODE_ENV=production PORT="8080" GREETING=hello\ world
ENV LEGACY_FORM a value with spaces
EXPOSE 8080/tcp 53/udp
HEALTHCHECK --interval=30s --timeout=3s CMD wget -qO- http://localhost:8080/healthz || exit 1
LABEL "org.example.quote"="say \"hi\"" org.example.plain=yes
VOLUME ["/data", "/logs"]
USER node:node
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "server.js", "--title=\"shop\"", "it's"]
# ready: yes
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
