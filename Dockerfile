# printernizer-stats: the Home Assistant add-on image, and a plain Docker image
# (`docker run -v printernizer-data:/data -p 8099:8099 IMAGE`).
# The Supervisor passes BUILD_FROM per architecture from build.yaml; the default here is the pinned amd64 base.
ARG BUILD_FROM=ghcr.io/home-assistant/amd64-base:3.22

# Node.js and npm from Alpine's packages, plus the compiler better-sqlite3 falls back to when no prebuilt binary
# matches this Node.js and musl. Every stage starts from the same base, so the native addon fits the run stage.
FROM ${BUILD_FROM} AS toolchain
RUN apk add --no-cache nodejs npm python3 make g++
WORKDIR /src

# Production dependencies only.
FROM toolchain AS deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force

# TypeScript compiled with the dev dependencies; only dist/ leaves this stage.
FROM toolchain AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${BUILD_FROM}
ARG BUILD_ARCH=amd64
ARG BUILD_VERSION=0.1.0

# Node.js only: no npm, no compiler in the image that runs.
RUN apk add --no-cache nodejs

WORKDIR /opt/printernizer-stats
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json LICENSE ./
COPY www ./www
COPY certs ./certs
COPY rootfs /
# A checkout that lost the executable bits (a Windows clone) must still start.
RUN chmod a+x /etc/s6-overlay/s6-rc.d/printernizer-stats/run /etc/s6-overlay/s6-rc.d/printernizer-stats/finish

# SUPERVISOR_TOKEN, set only by the Supervisor, makes the daemon report "homeassistant" instead of "docker".
ENV NODE_ENV=production \
    PORT=8099 \
    PRINTERNIZER_DEPLOYMENT=docker

EXPOSE 8099
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl --fail --silent --max-time 4 --output /dev/null "http://127.0.0.1:${PORT:-8099}/api/v1/health" || exit 1

LABEL \
    io.hass.name="Printernizer Stats" \
    io.hass.description="Privacy-first usage statistics for Bambu Lab and Prusa 3D printers" \
    io.hass.type="addon" \
    io.hass.arch="${BUILD_ARCH}" \
    io.hass.version="${BUILD_VERSION}" \
    org.opencontainers.image.title="Printernizer Stats" \
    org.opencontainers.image.description="Privacy-first usage statistics for Bambu Lab and Prusa 3D printers" \
    org.opencontainers.image.version="${BUILD_VERSION}" \
    org.opencontainers.image.licenses="MIT" \
    org.opencontainers.image.source="https://github.com/printernizer/printernizer-stats"

# The base image's ENTRYPOINT is s6-overlay's /init, which starts rootfs/etc/s6-overlay/s6-rc.d/printernizer-stats.
