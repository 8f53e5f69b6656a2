#!/usr/bin/env bash
# Build grimoire-drill/postgres:15-local from THIS machine's PostgreSQL 15, for hosts with a
# Docker daemon but no image registry (CI here). It stands in for postgres:15-alpine.
#
#   1. assemble a minimal rootfs: /usr/lib/postgresql/15 (no LLVM JIT), /usr/share/postgresql/15,
#      every shared library `ldd` lists for them, dash and the few utilities the entrypoint uses;
#   2. `docker import` it as grimoire-drill/postgres-rootfs:15-local;
#   3. `docker build` docker/postgres/ (FROM that rootfs + entrypoint) as the final tag.
#
# Idempotent: the image carries a label with a hash of its recipe (this script, the Dockerfile,
# the entrypoint, the PostgreSQL version); a matching image is left alone. --force rebuilds.
#
# Usage: scripts/build-postgres-image.sh [--force] [--tag TAG]
set -euo pipefail

TAG="grimoire-drill/postgres:15-local"
ROOTFS_TAG="grimoire-drill/postgres-rootfs:15-local"
PG_MAJOR=15
PG_LIB="/usr/lib/postgresql/$PG_MAJOR"
PG_SHARE="/usr/share/postgresql/$PG_MAJOR"
SERVER_UID=999
FORCE=0

while [ $# -gt 0 ]; do
	case "$1" in
		--force) FORCE=1 ;;
		--tag) TAG="$2"; shift ;;
		-h | --help) sed -n '2,14p' "$0"; exit 0 ;;
		*) echo "build-postgres-image: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
context="$here/../docker/postgres"
say() { echo "build-postgres-image: $*" >&2; }

if [ ! -x "$PG_LIB/bin/postgres" ]; then
	say "no PostgreSQL $PG_MAJOR at $PG_LIB — install postgresql-$PG_MAJOR (apt-get install -y postgresql-$PG_MAJOR)"
	exit 1
fi
if ! docker info > /dev/null 2>&1; then
	say "the Docker daemon does not answer — run scripts/ci-docker.sh first"
	exit 1
fi

pg_version="$("$PG_LIB/bin/postgres" --version)"
recipe="$( { cat "$0" "$context/Dockerfile" "$context/docker-entrypoint.sh"; echo "$pg_version"; } \
	| sha256sum | cut -c1-16)"
current="$(docker image inspect --format '{{ index .Config.Labels "grimoire-drill.recipe" }}' "$TAG" 2> /dev/null || true)"
if [ "$FORCE" = 0 ] && [ "$current" = "$recipe" ]; then
	say "$TAG is up to date (recipe $recipe)"
	exit 0
fi

previous_id="$(docker image inspect --format '{{ .Id }}' "$TAG" 2> /dev/null || true)"
previous_rootfs_id="$(docker image inspect --format '{{ .Id }}' "$ROOTFS_TAG" 2> /dev/null || true)"
stage="$(mktemp -d /tmp/grimoire-drill-pgimage.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
root="$stage/rootfs"
say "assembling rootfs from $pg_version in $root"

# Debian 12 layout (merged /usr): /bin, /lib, /lib64, /sbin are symlinks into /usr.
mkdir -p "$root"/{usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/sbin,usr/local/bin,etc,tmp,proc,sys,dev}
mkdir -p "$root"/{var/lib/postgresql/data,var/run/postgresql,usr/lib/locale,usr/share}
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$root/$d"; done

# PostgreSQL itself, minus LLVM JIT (it would drag in libLLVM, ~100 MB) and man pages.
tar -C / --exclude="${PG_LIB#/}/lib/bitcode" --exclude="${PG_LIB#/}/lib/llvmjit*" \
	--exclude="${PG_SHARE#/}/man" -cf - "${PG_LIB#/}" "${PG_SHARE#/}" | tar -C "$root" -xf -
# Time zones (Debian builds PostgreSQL against the system tzdata) and the C.UTF-8 locale.
tar -C / --exclude=usr/share/zoneinfo/right -cf - usr/share/zoneinfo usr/lib/locale/C.utf8 | tar -C "$root" -xf -
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"

# The shell and the utilities docker-entrypoint.sh calls.
cp -L /usr/bin/dash "$root/usr/bin/dash"
ln -s dash "$root/usr/bin/sh"
for util in cat chmod chown env id locale ls mkdir rm setpriv; do
	cp -L "$(command -v "$util")" "$root/usr/bin/$util"
done

# Every shared library the ELF files above need, placed where the loader looks for it.
ldd_all() {
	find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -print0 \
		| while IFS= read -r -d '' file; do ldd "$file" 2> /dev/null || true; done
}
ldd_all > "$stage/ldd"
if grep -q 'not found' "$stage/ldd"; then
	say "shared libraries missing on this machine:"
	grep 'not found' "$stage/ldd" | sort -u >&2
	exit 1
fi
awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' "$stage/ldd" | sort -u > "$stage/libs"
while read -r lib; do
	dest="$root$(readlink -f "$(dirname "$lib")")"
	mkdir -p "$dest"
	cp -L "$lib" "$dest/$(basename "$lib")"
done < "$stage/libs"
printf '%s\n' /usr/local/lib /usr/lib/x86_64-linux-gnu > "$root/etc/ld.so.conf"
ldconfig -r "$root"

# Accounts (files only: glibc's nss_files is built in) and the dirs the server writes to.
cat > "$root/etc/passwd" << EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$SERVER_UID:$SERVER_UID:PostgreSQL:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat > "$root/etc/group" << EOF
root:x:0:
postgres:x:$SERVER_UID:
nogroup:x:65534:
EOF
printf '%s\n' "passwd: files" "group: files" "shadow: files" "hosts: files dns" > "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chown -R "$SERVER_UID:$SERVER_UID" "$root/var/lib/postgresql" "$root/var/run/postgresql"
chmod 700 "$root/var/lib/postgresql/data"
chmod 3777 "$root/var/run/postgresql"

say "importing rootfs as $ROOTFS_TAG ($(du -sh "$root" | cut -f1))"
tar -C "$root" --numeric-owner -cf - . | docker import \
	--message "rootfs of $pg_version from $(hostname)" - "$ROOTFS_TAG" > /dev/null

say "building $TAG"
DOCKER_BUILDKIT=0 docker build --quiet \
	--build-arg "ROOTFS_IMAGE=$ROOTFS_TAG" \
	--label "grimoire-drill.recipe=$recipe" \
	--label "org.opencontainers.image.version=$pg_version" \
	--label "org.opencontainers.image.description=PostgreSQL $PG_MAJOR for grimoire-drill, built from the host's packages" \
	--tag "$TAG" "$context" > "$stage/build.log" 2>&1 || { cat "$stage/build.log" >&2; exit 1; }

# The images this build replaces are now untagged: remove them (only them) unless still in use.
for old in "$previous_id" "$previous_rootfs_id"; do
	if [ -n "$old" ] && [ -z "$(docker image inspect --format '{{ join .RepoTags "," }}' "$old" 2> /dev/null)" ]; then
		docker image rm "$old" > /dev/null 2>&1 || true
	fi
done

# Smoke test: the tools the drill runs inside must start. If containers cannot run on this
# machine (cgroups, seccomp...), untag the image so tests skip ("image absent") instead of failing.
if ! smoke="$(docker run --rm --entrypoint pg_restore "$TAG" --version 2>&1)"; then
	docker image rm "$TAG" > /dev/null 2>&1 || true
	say "containers cannot run here, $TAG removed: $(echo "$smoke" | tail -n 1)"
	exit 1
fi
say "built $TAG ($(docker image inspect --format '{{ .Size }}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
