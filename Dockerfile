# printernizer-stats: the Home Assistant add-on image, and a plain Docker image
# (`docker run -v printernizer-data:/data -p 8099:8099 IMAGE`).
#
# One multi-arch base for every architecture (home-assistant/docker-base publishes multi-arch images since 2026.03.1).
# There is no build.yaml: since Supervisor 2026.04 it only earns a deprecation warning, and without it the Supervisor
# passes no BUILD_FROM, so this default is the base of every build; `docker buildx build --platform` picks the
# architecture, and BUILD_ARCH/BUILD_VERSION come as build arguments (supervisor/apps/build.py, get_docker_args).
ARG BUILD_FROM=ghcr.io/home-assistant/base:3.22

# Node.js and npm from Alpine's packages; every stage starts from the same base, so a native addon built in one
# fits the image that runs.
FROM ${BUILD_FROM} AS node
RUN apk add --no-cache nodejs npm
WORKDIR /src

# Production dependencies: the one stage that installs better-sqlite3's native addon. prebuild-install fetches a
# prebuilt binary for this Node.js and musl when one is published (not always found on musl:
# WiseLibs/better-sqlite3#1325); otherwise it compiles with the tools installed here.
FROM node AS deps
RUN apk add --no-cache python3 make g++
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force

# TypeScript compiled with the dev dependencies. tsc needs no native addon, so install scripts are skipped and
# better-sqlite3 is neither downloaded nor compiled a second time; only dist/ leaves this stage.
FROM node AS build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
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
# SQLITE_TMPDIR: SQLite puts its temporary files (large sorts, VACUUM) in the first usable of $SQLITE_TMPDIR, $TMPDIR,
# /var/tmp, /usr/tmp, /tmp (os_unix.c, unixTempFileDir). /var/tmp exists and is writable by root, but the add-on's
# AppArmor profile lets the daemon write only /data and /tmp, so without this SQLite would pick /var/tmp and fail
# (tests/addon/sandbox.test.ts). Set here, it also reaches backup_pre/backup_post, which `docker exec` runs.
ENV NODE_ENV=production \
    PORT=8099 \
    PRINTERNIZER_DEPLOYMENT=docker \
    SQLITE_TMPDIR=/tmp

EXPOSE 8099
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl --fail --silent --max-time 4 --output /dev/null "http://127.0.0.1:${PORT:-8099}/api/v1/health" || exit 1

# The Supervisor and the builder workflow set io.hass.version/arch (and the Supervisor name, description, type) on
# their own; these defaults describe a plain `docker build .` the same way. "app" is the Supervisor's type label
# today ("addon" is the legacy value: supervisor/const.py, META_APP).
LABEL \
    io.hass.name="Printernizer Stats" \
    io.hass.description="Privacy-first usage statistics for Bambu Lab and Prusa 3D printers" \
    io.hass.type="app" \
    io.hass.arch="${BUILD_ARCH}" \
    io.hass.version="${BUILD_VERSION}" \
    org.opencontainers.image.title="Printernizer Stats" \
    org.opencontainers.image.description="Privacy-first usage statistics for Bambu Lab and Prusa 3D printers" \
    org.opencontainers.image.version="${BUILD_VERSION}" \
    org.opencontainers.image.licenses="MIT" \
    org.opencontainers.image.source="https://github.com/printernizer/printernizer-stats"

# The base image's ENTRYPOINT is s6-overlay's /init, which starts rootfs/etc/s6-overlay/s6-rc.d/printernizer-stats.
