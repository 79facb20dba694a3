# syntax=docker/dockerfile:1
#
# keycloak-exapp: the Node sidecar, a pre-built Keycloak, a Java 21 runtime and HaRP's frpc.
#
#   docker build -t keycloak-exapp:0.1.0 .
#
# Stages: keycloak (official image, `kc.sh build`), jre (Temurin 21), frpc (HaRP's tunnel client),
# build (TypeScript → dist, production node_modules), runtime (what ships). test/packaging.test.ts
# checks this file's structure.

# Build-time Keycloak options the image is built for. They must equal
# buildOptionsFor({ keycloak: { db: { kind: 'postgres' } } }) in src/keycloak/options.ts (the
# packaging test compares them); the runtime stamp below is made from the same value.
ARG KC_BUILD_OPTIONS="--db=postgres --health-enabled=true --metrics-enabled=true"

# ---- keycloak: the distribution, augmented once for production ---------------------------------
# Same version as KEYCLOAK_VERSION in src/config/schema.ts (the packaging test compares them).
FROM quay.io/keycloak/keycloak:26.7.3 AS keycloak
ARG KC_BUILD_OPTIONS
# Writes the build-time configuration into lib/quarkus, so the sidecar can always start
# Keycloak with `kc.sh start --optimized` and nothing in /opt/keycloak/lib changes at run time.
# The official image builds with its OpenJDK 21; the runtime stage runs the same major (Temurin
# 21), and the augmented output is plain bytecode.
RUN /opt/keycloak/bin/kc.sh build ${KC_BUILD_OPTIONS}

# ---- jre: a Java 21 runtime to copy (Debian bookworm has no openjdk-21) --------------------------
FROM eclipse-temurin:21-jre AS jre

# ---- frpc: HaRP's FRP client, from the release archive, checked against its checksum list -----------
FROM debian:bookworm-slim AS frpc
ARG TARGETARCH
ARG FRP_VERSION=0.61.1
ADD https://github.com/fatedier/frp/releases/download/v${FRP_VERSION}/frp_${FRP_VERSION}_linux_${TARGETARCH}.tar.gz /tmp/frp/
ADD https://github.com/fatedier/frp/releases/download/v${FRP_VERSION}/frp_sha256_checksums.txt /tmp/frp/
RUN set -eu; \
    cd /tmp/frp; \
    grep " frp_${FRP_VERSION}_linux_${TARGETARCH}.tar.gz\$" frp_sha256_checksums.txt | sha256sum -c -; \
    tar -xzf "frp_${FRP_VERSION}_linux_${TARGETARCH}.tar.gz"; \
    install -D -m 0755 "frp_${FRP_VERSION}_linux_${TARGETARCH}/frpc" /out/frpc; \
    /out/frpc --version

# ---- build: compile TypeScript, then keep only production dependencies ----------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm run build` compiles each module (dist/config, dist/keycloak, … for docker/keycloak-home.mjs
# and the CLIs) and then bundles the app into dist/main.js with esbuild (one file, its names kept, instead
# of some 800 modules, PGlite and pino kept as packages), with the status page's files and the
# migrations next to it (dist/static, dist/migrations). The per-module dist/db/client.js loads its
# migrations relative to itself (new URL('./migrations', import.meta.url)), so they go there too.
RUN npm run build \
 && cp -R src/db/migrations dist/db/migrations \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----------------------------------------------------------------------------------
FROM node:22-bookworm-slim AS runtime
ARG KC_BUILD_OPTIONS

# ca-certificates: AppAPI copies Nextcloud's CA bundle into the container and runs
# update-ca-certificates; NODE_EXTRA_CA_CERTS makes Node trust the result. Nothing else is
# installed: no compilers, no package caches. setpriv (privilege drop) is in util-linux, which
# Debian always has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# MALLOC_ARENA_MAX and a 1 MB semi-space keep the app's own process small (its threads would each
# get a malloc arena, and V8's young generation grows to tens of MB that stay resident). The fixed
# mmap threshold gives a freed block of 32 kB or more back to the system at once, and the trim
# threshold a free 128 kB at the top of the heap: glibc otherwise raises its mmap threshold after
# the first large free (up to 32 MB) and keeps such blocks in its heap (measured: native memory
# 35 -> 30 MiB at the sidecar's peak). With an mmap threshold of 128 kB, the malloc arena the
# app's other threads share (PGlite's, V8's helpers) was sometimes left with 22 MiB resident
# after the start instead of 7, freed blocks glibc could not give back: in 4 of 11 starts on a
# busy machine the idle sidecar held 32-41 MiB of native memory instead of 21-25, and peaked at
# 162-167 MiB instead of 150-155. With 32 kB: 20.6-21.0 MiB in 6 of 6 starts, 4 of them busy.
ENV NODE_ENV=production \
    JAVA_HOME=/opt/java/openjdk \
    KEYCLOAK_HOME=/opt/keycloak \
    APP_PERSISTENT_STORAGE=/nc_app_keycloak_data \
    APP_HOST=0.0.0.0 \
    APP_PORT=23000 \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=32768 \
    MALLOC_TRIM_THRESHOLD_=131072 \
    NODE_OPTIONS=--max-semi-space-size=1
ENV PATH="${JAVA_HOME}/bin:${PATH}"

COPY --from=jre /opt/java/openjdk /opt/java/openjdk
COPY --from=frpc /out/frpc /usr/local/bin/frpc
COPY --from=keycloak /opt/keycloak /opt/keycloak

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --chmod=0755 docker/entrypoint.sh ./docker/entrypoint.sh
COPY docker/keycloak-home.mjs docker/healthcheck.mjs ./docker/

# The build stamp tells the sidecar's buildKeycloak() that /opt/keycloak is already built for
# these options with this JAVA_HOME, so it starts it as is. /opt/keycloak stays root-owned and
# read-only for the app user, except data/ (transaction logs, tmp), which Keycloak writes.
# The node user of the base image is uid 1000; the app runs as that user (see entrypoint.sh).
RUN node docker/keycloak-home.mjs stamp ${KC_BUILD_OPTIONS} \
 && mkdir -p /opt/keycloak/data /nc_app_keycloak_data \
 && chown -R 1000:1000 /opt/keycloak/data /nc_app_keycloak_data

# AppAPI mounts the named volume nc_app_keycloak_data here: generated secrets, the embedded
# databases when no Postgres is configured, and a rebuilt Keycloak when build options differ.
VOLUME ["/nc_app_keycloak_data"]

# Without HaRP: healthy once /healthz answers 200 (Keycloak ready), or while Keycloak is stopped on
# purpose (app disabled in Nextcloud). Under HaRP (HP_SHARED_KEY set): frpc runs and the app answers
# on /tmp/exapp.sock, since HaRP waits only 90 s for "healthy" and a first Keycloak start can take
# longer. The start period covers a first start that rebuilds Keycloak and migrates its database.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10m --start-interval=2s --retries=4 \
  CMD node /app/docker/healthcheck.mjs "http://127.0.0.1:${APP_PORT}/healthz"

# The image user stays root: AppAPI/HaRP copy the FRP certificates to /certs/frp and run
# update-ca-certificates as the image user. The entrypoint writes /frpc.toml, then drops to uid
# 1000 (setpriv) before it starts frpc and the app.
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["node", "dist/main.js"]
