#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12 ("bookworm") root file system.
#
#   sudo scripts/fresh-machine-check.sh            # both commands (about an hour on 2 cores)
#   sudo scripts/fresh-machine-check.sh --up-only  # only the first one
#   sudo scripts/fresh-machine-check.sh --test-only
#                     # only the second one, in the root file system an earlier run left after
#                     # its first command passed (as a newcomer runs them: up, then test)
#
# Makes a clean Debian 12 root file system with debootstrap (--variant=minbase: less than a
# plain install has, so nothing is taken for granted), copies a clean clone of this repository's
# HEAD into it, and runs, in a chroot as root:
#   1. `./dev.sh up` until the printed URL answers /health/ready and serves the web client;
#   2. `./dev.sh test` (every check of the workspace).
# It prints the time of each step and a summary at the end.
#
# What a chroot cannot be, said here and in its output:
# - Rust: rustup's downloads (static.rust-lang.org) are not reachable from the machines this
#   project is built on, so the host's toolchain is mounted read-only and put on PATH; on a real
#   fresh machine dev.sh installs it with rustup. Everything else comes from Debian's packages,
#   PyPI, the npm registry and crates.io, as on a real machine.
# - Ports: the chroot shares the host's network. The test services of `./dev.sh test` therefore
#   run on other ports than the standard ones (WEBEREI_TEST_PG_PORT, ..._REDIS_PORT,
#   ..._NATS_PORT), so the host's own PostgreSQL/Redis/NATS are neither used nor disturbed, and
#   `weberei up` listens on WEBEREI_HTTP_ADDR=127.0.0.1:18080.
#
# Environment: FRESH_DIR (default /var/tmp/weberei-fresh; removed and made anew),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${FRESH_DIR:-/var/tmp/weberei-fresh}
ROOT="$WORK/rootfs"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HTTP_ADDR=127.0.0.1:18080
UP_ONLY=0
TEST_ONLY=0
case "${1:-}" in
--up-only) UP_ONLY=1 ;;
--test-only) TEST_ONLY=1 ;;
"") ;;
*) printf 'usage: %s [--up-only | --test-only]\n' "$0" >&2 && exit 2 ;;
esac

say() { printf '\033[1m[fresh %4ds] %s\033[0m\n' "$SECONDS" "$*" >&2; }
die() {
	printf '\033[1;31mfresh-machine-check: %s\033[0m\n' "$*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it)"
if ! command -v debootstrap >/dev/null; then
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
fi

# Every process whose root is the chroot (servers started by dev.sh), then the mounts.
stop_chroot() {
	local pid root
	for signal in TERM KILL; do
		for pid in /proc/[0-9]*; do
			root=$(readlink "$pid/root" 2>/dev/null) || continue
			[ "$root" = "$ROOT" ] && kill "-$signal" "${pid#/proc/}" 2>/dev/null || true
		done
		[ "$signal" = TERM ] && sleep 3
	done
	for m in opt/host-rust/rustup opt/host-rust/bin dev/pts dev sys proc; do
		mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m" || true
	done
}
trap stop_chroot EXIT

# The host's Rust toolchain, read-only (see the header).
RUSTUP_HOST=${RUSTUP_HOME:-$HOME/.rustup}
CARGO_BIN_HOST=$(dirname "$(command -v cargo)")
[ -d "$RUSTUP_HOST" ] || die "no rustup home at $RUSTUP_HOST on the host"
mount_all() {
	mount -t proc proc "$ROOT/proc"
	mount --rbind /sys "$ROOT/sys"
	mount --bind /dev "$ROOT/dev"
	mount --bind /dev/pts "$ROOT/dev/pts"
	mount --bind "$RUSTUP_HOST" "$ROOT/opt/host-rust/rustup"
	mount -o remount,ro,bind "$ROOT/opt/host-rust/rustup"
	mount --bind "$CARGO_BIN_HOST" "$ROOT/opt/host-rust/bin"
	mount -o remount,ro,bind "$ROOT/opt/host-rust/bin"
}
CA_ENV=()
for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS PIP_CERT CURL_CA_BUNDLE REQUESTS_CA_BUNDLE; do
	[ -n "${!v:-}" ] && CA_ENV+=("$v=${!v}")
done

# A login shell of root in the chroot, with nothing of the host's environment but the toolchain.
in_chroot() {
	chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/opt/host-rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		RUSTUP_HOME=/opt/host-rust/rustup CARGO_HOME=/root/.cargo \
		WEBEREI_HTTP_ADDR="$HTTP_ADDR" "${CA_ENV[@]}" \
		WEBEREI_TEST_PG_PORT=25432 WEBEREI_TEST_REDIS_PORT=26379 WEBEREI_TEST_NATS_PORT=24222 \
		"$@"
}

T_DEBOOTSTRAP=skipped
T_UP_URL=skipped
URL="(not run: --test-only)"
if [ "$TEST_ONLY" -eq 1 ]; then
	[ -d "$ROOT/root/weberei/target" ] || die "--test-only needs the root file system of an earlier run whose first step passed ($ROOT)"
	stop_chroot
	mount_all
	say "--test-only: the second command in the root file system left by an earlier run (its first command passed there)"
else
if [ -d "$WORK" ]; then
	stop_chroot
	! grep -q " $ROOT/" /proc/mounts || die "something is still mounted under $ROOT: unmount it first"
	rm -rf --one-file-system "$WORK"
fi
mkdir -p "$WORK"

say "debootstrap --variant=minbase bookworm ($MIRROR)"
t=$SECONDS
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
	die "debootstrap failed: see $WORK/debootstrap.log"
T_DEBOOTSTRAP=$((SECONDS - t))
# What a Debian 12 install's sources.list has: updates and security, besides the release.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This machine reaches the registries through a TLS-inspecting egress proxy whose CA is in the
# host's trust store, not in Debian's: bring the host's local CAs (installed into the system
# bundle when dev.sh installs ca-certificates), its pip.conf and its CA variables along. A real
# fresh machine needs none of this.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"

say "a clean clone of HEAD ($(git -C "$REPO" rev-parse --short HEAD)) into /root/weberei"
git clone -q --no-local "$REPO" "$ROOT/root/weberei"

mkdir -p "$ROOT/opt/host-rust/rustup" "$ROOT/opt/host-rust/bin"

mount_all
# As in a container image: packages do not start their services while installed (there is no
# init in a chroot); dev.sh starts what it needs itself.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
say "NOTE: Rust is the host's toolchain, mounted read-only at /opt/host-rust ($(cargo --version)); rustup's downloads are not reachable from here"


# ---- 1. ./dev.sh up ----------------------------------------------------------------------------
say "1/2: ./dev.sh up (log: $WORK/up.log)"
t=$SECONDS
: >"$WORK/up.log" # exists before the background job opens it: the loop below reads it at once
in_chroot bash -c 'cd /root/weberei && exec ./dev.sh up' >"$WORK/up.log" 2>&1 &
UP_PID=$!
URL=""
while kill -0 "$UP_PID" 2>/dev/null; do
	URL=$(sed -n 's/.*Weberei is running at \(http:[^ ]*\).*/\1/p' "$WORK/up.log" | head -n 1)
	[ -n "$URL" ] && break
	[ $((SECONDS - t)) -lt 3600 ] || die "no URL after an hour: see $WORK/up.log"
	sleep 5
done
[ -n "$URL" ] || {
	tail -n 40 "$WORK/up.log" >&2
	die "./dev.sh up ended without printing the URL: see $WORK/up.log"
}
T_UP_URL=$((SECONDS - t))
say "printed: $URL (after $T_UP_URL s)"
ready=""
for _ in $(seq 1 60); do
	ready=$(curl -fsS "${URL}health/ready" 2>/dev/null) && break
	sleep 1
done
[ -n "$ready" ] || die "${URL}health/ready did not answer 200: see $WORK/up.log"
say "/health/ready: $ready"
page=$(curl -fsS "$URL") || die "$URL did not answer"
grep -q '_app/immutable' <<<"$page" || die "$URL is not the web client: $(head -c 300 <<<"$page")"
say "/ serves the web client ($(wc -c <<<"$page") bytes of HTML with its /_app/immutable/ assets)"
knoten=$(curl -fsS -H 'content-type: application/json' "${URL}graphql" \
	--data '{"query":"{ knoten(bbox:{west:11.2,south:50.9,east:11.4,north:51.0}) { edges { node { title } } } }"}')
grep -q '"title"' <<<"$knoten" || die "the demo town has no Knoten: $knoten"
say "the demo town answers: $(grep -o '"title"' <<<"$knoten" | wc -l) Knoten"
kill -INT "$UP_PID" 2>/dev/null || true
wait "$UP_PID" 2>/dev/null || true
stop_chroot
mount_all
fi

T_TEST=skipped
if [ "$UP_ONLY" -eq 0 ]; then
	# ---- 2. ./dev.sh test --------------------------------------------------------------------------
	say "2/2: ./dev.sh test (log: $WORK/test.log)"
	t=$SECONDS
	if in_chroot bash -c 'cd /root/weberei && ./dev.sh test' >"$WORK/test.log" 2>&1; then
		T_TEST=$((SECONDS - t))
		say "./dev.sh test passed in $T_TEST s"
	else
		tail -n 60 "$WORK/test.log" >&2
		die "./dev.sh test failed after $((SECONDS - t)) s: see $WORK/test.log"
	fi
	grep -E '^(test result|     Summary|==> all checks)' "$WORK/test.log" | tail -n 5 >&2 || true
fi

cat >&2 <<EOF

fresh Debian 12 (debootstrap minbase, $(cat "$ROOT/etc/debian_version")), clean clone of $(git -C "$REPO" rev-parse --short HEAD):
  debootstrap                          $T_DEBOOTSTRAP s
  ./dev.sh up until the URL            $T_UP_URL s   ($URL answered /health/ready and served the web client)
  ./dev.sh test                        $T_TEST s
  Rust: the host's toolchain, read-only (rustup's downloads are not reachable here)
  CA: this machine's egress-proxy CA and CA variables (${CA_ENV[*]:-none}) were brought in
EOF
