#!/bin/sh
# Entrypoint of grimoire-drill/postgres:15-local: the subset of the official postgres image's
# entrypoint the drill relies on, in POSIX sh because the image carries only dash.
#
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default $POSTGRES_USER),
#   POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256).
#
# First start: initdb as the unprivileged postgres user, TCP on 0.0.0.0:5432 with scram,
# create POSTGRES_DB in single-user mode (no temporary server, so the log line
# "database system is ready to accept connections" appears once, when it is true).
set -eu

if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
	# Like the official image: fix ownership of (possibly mounted) dirs, then drop root.
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
		exit 1
	fi
	case "$POSTGRES_DB" in
		'' | *[!A-Za-z0-9_-]*)
			echo "error: POSTGRES_DB must be letters, digits, '_' or '-'" >&2
			exit 1 ;;
	esac

	# The password reaches initdb through a pipe from a shell builtin: never argv, never a file.
	# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list on purpose
	printf '%s\n' "${POSTGRES_PASSWORD:-}" | initdb \
		--pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile=/dev/stdin \
		--encoding=UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
		${POSTGRES_INITDB_ARGS:-}

	printf '%s\n' "" "# added by docker-entrypoint.sh" "listen_addresses = '*'" \
		"jit = off  # this image carries no LLVM" >> "$PGDATA/postgresql.conf"
	printf '%s\n' "" "# added by docker-entrypoint.sh: any address, password required" \
		"host all all all $POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

	if [ "$POSTGRES_DB" != postgres ]; then
		# Single-user mode exits 0 even when the statement fails: read its log instead.
		single_user_log="$(printf 'CREATE DATABASE "%s";\n' "$POSTGRES_DB" \
			| postgres --single -D "$PGDATA" -c listen_addresses='' postgres 2>&1 > /dev/null)"
		printf '%s\n' "$single_user_log" >&2
		case "$single_user_log" in
			*ERROR:* | *FATAL:*)
				echo "error: could not create database $POSTGRES_DB" >&2
				exit 1 ;;
		esac
	fi
	echo "PostgreSQL init process complete; ready for start up."
fi

unset POSTGRES_PASSWORD
exec "$@"
