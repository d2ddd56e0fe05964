FROM --platform=linux/amd64 node:20 AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM nginx:1.27-alpine
COPY --from=assets /app/dist /usr/share/nginx/html
# ready: yes  (a JS bundle is the same on every platform)
# platforms: linux/amd64,linux/arm64,linux/arm/v7
# expect: none
