#!/bin/sh
# Container entrypoint of keycloak-exapp, as AppAPI's Docker daemon and HaRP start an ExApp image.
#
# As root (the image user, so AppAPI/HaRP can copy /certs/frp and update the CA store):
#   1. under HaRP (HP_SHARED_KEY set) write /frpc.toml: server HP_FRP_ADDRESS:HP_FRP_PORT, token,
#      one TCP proxy named $APP_ID with remotePort=$APP_PORT and the unix_domain_socket plugin to
#      /tmp/exapp.sock, TLS from /certs/frp when present, loginFailExit=false;
#   2. give the app user the persistent storage;
#   3. re-run this script as uid 1000 through setpriv.
# As the app user (also when the container is started with --user):
#   4. start frpc in the background (restarted if it exits);
#   5. choose KEYCLOAK_HOME: the image's pre-built /opt/keycloak, or a copy in persistent storage
#      when this start wants other build-time options (docker/keycloak-home.mjs);
#   6. exec the command (node dist/main.js).
set -eu

APP_UID=1000
APP_GID=1000
SOCKET=/tmp/exapp.sock
IMAGE_KEYCLOAK_HOME=/opt/keycloak
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

log() {
	printf 'entrypoint: %s\n' "$*" >&2
}

die() {
	log "$*"
	exit 1
}

# A TOML basic string: backslashes and double quotes escaped.
toml_string() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

require_port() {
	case $2 in
	'' | *[!0-9]*) die "$1 must be a port number (got '$2')" ;;
	esac
}

# write_frpc_config FILE: the frpc configuration HaRP's start.sh writes, plus loginFailExit.
write_frpc_config() {
	: "${HP_FRP_ADDRESS:?HP_FRP_ADDRESS is required when HP_SHARED_KEY is set}"
	: "${HP_FRP_PORT:?HP_FRP_PORT is required when HP_SHARED_KEY is set}"
	: "${APP_ID:?APP_ID is required when HP_SHARED_KEY is set}"
	: "${APP_PORT:?APP_PORT is required when HP_SHARED_KEY is set}"
	require_port HP_FRP_PORT "$HP_FRP_PORT"
	require_port APP_PORT "$APP_PORT"
	(
		umask 077
		{
			printf 'serverAddr = %s\n' "$(toml_string "$HP_FRP_ADDRESS")"
			printf 'serverPort = %s\n' "$HP_FRP_PORT"
			# Keep retrying while HaRP is not up yet instead of exiting.
			printf 'loginFailExit = false\n'
			if [ -d /certs/frp ]; then
				printf 'transport.tls.enable = true\n'
				printf 'transport.tls.certFile = "/certs/frp/client.crt"\n'
				printf 'transport.tls.keyFile = "/certs/frp/client.key"\n'
				printf 'transport.tls.trustedCaFile = "/certs/frp/ca.crt"\n'
				printf 'transport.tls.serverName = "harp.nc"\n'
			else
				printf 'transport.tls.enable = false\n'
			fi
			printf 'metadatas.token = %s\n' "$(toml_string "$HP_SHARED_KEY")"
			printf '\n[[proxies]]\n'
			printf 'name = %s\n' "$(toml_string "$APP_ID")"
			printf 'type = "tcp"\n'
			printf 'remotePort = %s\n' "$APP_PORT"
			printf '[proxies.plugin]\n'
			printf 'type = "unix_domain_socket"\n'
			printf 'unixPath = "%s"\n' "$SOCKET"
		} >"$1"
	)
	if [ -d /certs/frp ]; then
		log "wrote $1 (TLS with /certs/frp)"
	else
		log "wrote $1 (no /certs/frp: plain connection)"
	fi
}

# ---- root part ------------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	if [ -n "${HP_SHARED_KEY:-}" ]; then
		if [ -d /certs/frp ]; then
			# Copied in by HaRP as root; frpc runs as the app user and must read the key.
			chown -R "$APP_UID:$APP_GID" /certs/frp
			if [ -f /certs/frp/client.key ]; then
				chmod 0600 /certs/frp/client.key
			fi
		fi
		write_frpc_config /frpc.toml
		chown "$APP_UID:$APP_GID" /frpc.toml
		EXAPP_FRPC_CONFIG=/frpc.toml
		export EXAPP_FRPC_CONFIG
	fi
	storage=${APP_PERSISTENT_STORAGE:-/nc_app_keycloak_data}
	mkdir -p "$storage"
	if [ "$(stat -c %u "$storage")" != "$APP_UID" ]; then
		log "giving $storage to uid $APP_UID"
		chown -R "$APP_UID:$APP_GID" "$storage"
	fi
	exec setpriv --reuid="$APP_UID" --regid="$APP_GID" --init-groups --inh-caps=-all \
		-- "$SCRIPT_DIR/entrypoint.sh" "$@"
fi

# ---- app-user part --------------------------------------------------------------------------
if [ -n "${HP_SHARED_KEY:-}" ]; then
	frpc_config=${EXAPP_FRPC_CONFIG:-}
	if [ -z "$frpc_config" ]; then
		# Started without root: / is not writable.
		frpc_config=/tmp/frpc.toml
		write_frpc_config "$frpc_config"
	fi
	log "starting frpc -> $SOCKET (proxy $APP_ID, remote port $APP_PORT)"
	(
		while :; do
			frpc -c "$frpc_config" || true
			log "frpc exited; restarting in 2 s"
			sleep 2
		done
	) &
fi

if home=$(node "$SCRIPT_DIR/keycloak-home.mjs"); then
	KEYCLOAK_HOME=$home
else
	log "could not prepare a Keycloak home; using $IMAGE_KEYCLOAK_HOME"
	KEYCLOAK_HOME=$IMAGE_KEYCLOAK_HOME
fi
export KEYCLOAK_HOME
log "KEYCLOAK_HOME=$KEYCLOAK_HOME"

exec "$@"
