#!/bin/sh
# PostgreSQL first-start script (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
#
#   database nextcloud  owned by role nextcloud
#   database keycloak   owned by role keycloak; Keycloak's tables in schema "keycloak",
#                       the sidecar's (role keycloak_exapp) in schema "keycloak_exapp"
#
# Each role's default search_path ("$user", public) lands its unqualified tables in the schema of
# its own name, so Keycloak and the sidecar share one database without sharing tables. Passwords
# come from the environment and are passed as psql variables, never spliced into SQL text.
set -eu

: "${NEXTCLOUD_DB_PASSWORD:?set NEXTCLOUD_DB_PASSWORD}"
: "${KEYCLOAK_DB_PASSWORD:?set KEYCLOAK_DB_PASSWORD}"
: "${EXAPP_DB_PASSWORD:?set EXAPP_DB_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v nextcloud_pw="$NEXTCLOUD_DB_PASSWORD" \
	-v keycloak_pw="$KEYCLOAK_DB_PASSWORD" \
	-v exapp_pw="$EXAPP_DB_PASSWORD" <<'SQL'
CREATE ROLE nextcloud LOGIN PASSWORD :'nextcloud_pw';
CREATE DATABASE nextcloud OWNER nextcloud ENCODING 'UTF8' TEMPLATE template0;

CREATE ROLE keycloak LOGIN PASSWORD :'keycloak_pw';
CREATE ROLE keycloak_exapp LOGIN PASSWORD :'exapp_pw';
CREATE DATABASE keycloak OWNER keycloak ENCODING 'UTF8' TEMPLATE template0;
-- CREATE: drizzle keeps its migration ledger in a schema of its own ("drizzle").
GRANT CONNECT, CREATE ON DATABASE keycloak TO keycloak_exapp;
SQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname keycloak <<'SQL'
CREATE SCHEMA keycloak AUTHORIZATION keycloak;
CREATE SCHEMA keycloak_exapp AUTHORIZATION keycloak_exapp;
SQL
