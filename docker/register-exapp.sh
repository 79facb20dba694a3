#!/bin/sh
# docker-compose one-shot (service "register", Nextcloud's image, user www-data): once Nextcloud is
# installed and the ExApp answers /heartbeat, registers a manual-install daemon and the ExApp
# (`occ app_api:daemon:register`, `occ app_api:app:register --json-info`). The routes come from appinfo/info.xml (docker/exapp-json.php), so they
# mirror the manifest. Running it again is harmless: an app already registered is only enabled.
set -eu

: "${APP_ID:?set APP_ID}"
: "${APP_SECRET:?set APP_SECRET}"
: "${APP_PORT:?set APP_PORT}"
: "${EXAPP_HOST:?set EXAPP_HOST (where Nextcloud reaches the ExApp)}"
: "${EXAPP_NEXTCLOUD_URL:?set EXAPP_NEXTCLOUD_URL (where the ExApp reaches Nextcloud)}"
DAEMON=${DAEMON_NAME:-manual_install}
INFO_XML=${INFO_XML:-/exapp/info.xml}
HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

log() {
	printf 'register: %s\n' "$*" >&2
}

occ() {
	php /var/www/html/occ --no-interaction "$@"
}

# wait_for WHAT TRIES COMMAND...: retries COMMAND every 5 s.
wait_for() {
	what=$1
	tries=$2
	shift 2
	n=0
	until "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		if [ "$n" -ge "$tries" ]; then
			log "gave up waiting for $what"
			exit 1
		fi
		sleep 5
	done
	log "$what: ok"
}

nextcloud_installed() {
	occ status --output=json | grep -q '"installed":true'
}

exapp_heartbeat() {
	curl -fsS --max-time 5 "http://$EXAPP_HOST:$APP_PORT/heartbeat"
}

wait_for "Nextcloud installed" 120 nextcloud_installed
if ! occ app:list --enabled --output=json | grep -q '"app_api"'; then
	occ app:enable app_api
fi
wait_for "ExApp heartbeat at $EXAPP_HOST:$APP_PORT" 120 exapp_heartbeat

# Re-registering an existing daemon name is a silent no-op in AppAPI.
occ app_api:daemon:register "$DAEMON" "Manual install (docker compose)" manual-install \
	http "$EXAPP_HOST" "$EXAPP_NEXTCLOUD_URL"

json=$(php "$HERE/exapp-json.php" "$INFO_XML")
log "registering $APP_ID on $DAEMON (waits for its init: Keycloak, realm, first sync)"
set +e
output=$(occ app_api:app:register "$APP_ID" "$DAEMON" --wait-finish --json-info "$json" 2>&1)
rc=$?
set -e
printf '%s\n' "$output"
if [ "$rc" -eq 3 ] && printf '%s' "$output" | grep -q 'already registered'; then
	log "$APP_ID was registered before; enabling it"
	occ app_api:app:enable "$APP_ID" || true
elif [ "$rc" -ne 0 ]; then
	log "app_api:app:register failed (exit $rc)"
	exit "$rc"
fi
log "done: open Nextcloud and pick \"Keycloak\" in the top menu"
