# Imagicle audio gateway: Node LTS on Debian with Debian's ffmpeg.
FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (import/watch state) builds from source where its prebuilt binary cannot be downloaded.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Optional dependencies stay: the console's bundler (vite/rolldown) has its native binding there. No install
# scripts: ffmpeg-static would download a binary that this image does not use (FFMPEG_PATH below); the one native
# module that needs its script, better-sqlite3, is built explicitly.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY ui ./ui
RUN npm run build && npm prune --omit=dev --omit=optional

FROM node:22-bookworm-slim
# util-linux (essential in Debian, named to be sure) has prlimit: the memory ceiling of every ffmpeg (FFMPEG_MAX_MEMORY_MB).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates tini util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && test -x /usr/bin/prlimit
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8080 \
    TMP_DIR=/var/lib/imagicle-gateway/tmp \
    SPOOL_DIR=/var/lib/imagicle-gateway/spool \
    FFMPEG_PATH=/usr/bin/ffmpeg \
    FFPROBE_PATH=/usr/bin/ffprobe
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /var/lib/imagicle-gateway && chown -R node:node /var/lib/imagicle-gateway
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# IMAGICLE_URL is required in production (the embedded emulator is for development).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/main.js"]
CMD ["serve"]
