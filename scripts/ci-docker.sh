#!/usr/bin/env bash
# Make the docker engine usable on a CI machine (Debian 12, root, no image registry), then
# print the `export` lines the tests need:   eval "$(scripts/ci-docker.sh)"
#
#   1. install docker.io if dockerd is missing;
#   2. start dockerd in the background if `docker info` fails (log: $GRIMOIRE_DRILL_DOCKERD_LOG,
#      default /tmp/grimoire-drill-dockerd.log), falling back to less demanding daemon options
#      when the machine refuses iptables or overlayfs;
#   3. build grimoire-drill/postgres:15-local from this machine's PostgreSQL 15 if absent/stale.
#
# Idempotent. stdout carries only `export` lines; everything else goes to stderr. When Docker
# cannot work here it says why and exits 0 without exports, so docker tests skip, not fail.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POSTGRES_IMAGE="grimoire-drill/postgres:15-local"
DOCKERD_LOG="${GRIMOIRE_DRILL_DOCKERD_LOG:-/tmp/grimoire-drill-dockerd.log}"
READY_TIMEOUT_S=60
POLL_INTERVAL_S=0.5

say() { echo "ci-docker: $*" >&2; }
give_up() {
	say "$* — docker tests will be skipped"
	exit 0
}

docker_answers() { docker info > /dev/null 2>&1; }

# Wait for the daemon to answer, as long as it is alive; bounded.
wait_for_daemon() {
	local pid="$1" deadline=$((SECONDS + READY_TIMEOUT_S))
	while [ "$SECONDS" -lt "$deadline" ]; do
		docker_answers && return 0
		kill -0 "$pid" 2> /dev/null || return 1
		sleep "$POLL_INTERVAL_S"
	done
	return 1
}

install_docker() {
	command -v dockerd > /dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || give_up "dockerd is not installed and we are not root to install it"
	say "installing docker.io (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get update -qq && apt-get install -y -qq docker.io; } > /tmp/grimoire-drill-apt-docker.log 2>&1; then
		tail -n 5 /tmp/grimoire-drill-apt-docker.log >&2
		give_up "apt-get install docker.io failed (log: /tmp/grimoire-drill-apt-docker.log)"
	fi
}

start_daemon() {
	docker_answers && return 0
	[ "$(id -u)" = 0 ] || give_up "the Docker daemon does not answer and we are not root to start it"
	local running
	running="$(cat /var/run/docker.pid 2> /dev/null)"
	if [ -n "$running" ] && kill -0 "$running" 2> /dev/null; then
		say "dockerd (pid $running) is running but does not answer yet; waiting for it"
		wait_for_daemon "$running" && return 0
		give_up "the running dockerd (pid $running) never answered (see its log)"
	fi
	# Plain first; then without iptables (sandboxes without netfilter: port publishing still
	# works through docker-proxy); then also without overlayfs (nested overlay filesystems).
	local options
	for options in "" "--iptables=false --ip6tables=false" "--iptables=false --ip6tables=false --storage-driver=vfs"; do
		say "starting dockerd ${options:-with default options} (log: $DOCKERD_LOG)"
		# shellcheck disable=SC2086  # options is a word list on purpose
		setsid dockerd $options >> "$DOCKERD_LOG" 2>&1 < /dev/null &
		local pid=$!
		if wait_for_daemon "$pid"; then
			say "dockerd is up (pid $pid)"
			return 0
		fi
		kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null
		tail -n 3 "$DOCKERD_LOG" | sed 's/^/ci-docker:   /' >&2
	done
	give_up "dockerd would not start here (no permission for cgroups/namespaces?); log: $DOCKERD_LOG"
}

build_postgres_image() {
	if ! "$here/build-postgres-image.sh" --tag "$POSTGRES_IMAGE" >&2; then
		say "could not build $POSTGRES_IMAGE — PostgreSQL docker tests will be skipped"
		return 1
	fi
}

install_docker
start_daemon
echo "export TESTCONTAINERS_RYUK_DISABLED=true"
if build_postgres_image; then
	echo "export GRIMOIRE_DRILL_POSTGRES_IMAGE=$POSTGRES_IMAGE"
fi
exit 0
