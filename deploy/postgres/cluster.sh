#!/usr/bin/env bash
# cluster.sh — a private PostgreSQL cluster for development and tests.
#
#   cluster.sh start [DIR] [PORT]   install PostgreSQL if missing, create the cluster in DIR
#                                   if needed, start it, print its superuser URL on stdout
#   cluster.sh stop  [DIR]          stop it (fast mode) and remove DIR
#   cluster.sh url   [DIR]          print the URL of the cluster running in DIR
#   cluster.sh status [DIR]         say whether it runs (exit status 0 when it does)
#
# Defaults: DIR=/tmp/wengang-pg, PORT=55432. Only the URL goes to stdout, so that
#   export WENGANG_TEST_DATABASE_URL="$(deploy/postgres/cluster.sh start)"
# works; everything else goes to stderr.
#
# The cluster trusts every connection on its unix socket (in DIR) and on 127.0.0.1,
# and listens nowhere else: it is for one machine's development and tests, never
# for real data. WENGANG_PG_FAST=1 turns off fsync and synchronous_commit (tests
# only: a crash may lose or corrupt the cluster).
#
# initdb and postgres refuse to run as root: as root, the script runs them as the
# `postgres` user (creating it if needed) and gives DIR to it; otherwise it runs them
# as the calling user.
set -euo pipefail

readonly DEFAULT_DIR=/tmp/wengang-pg
readonly DEFAULT_PORT=55432
readonly MARKER=.wengang-pg # marks DIR as ours, so that stop never removes anything else

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
	printf 'cluster.sh: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat >&2 <<'EOF'
usage: cluster.sh start  [DIR] [PORT]   (defaults: /tmp/wengang-pg 55432)
       cluster.sh stop   [DIR]
       cluster.sh url    [DIR]
       cluster.sh status [DIR]
EOF
	exit 2
}

# abs DIR: DIR as an absolute path without a trailing slash.
abs() {
	local d=$1
	case $d in
	/*) ;;
	*) d=$PWD/$d ;;
	esac
	while [[ $d == */ && $d != / ]]; do d=${d%/}; done
	printf '%s' "$d"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# as_owner CMD...: runs CMD as the cluster's owner (postgres when we are root),
# from / so that a working directory postgres cannot enter does not matter, and
# without the lock's descriptor (a server that inherited it would hold the lock
# for as long as it runs).
as_owner() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@" 9>&-)
	else
		(cd / && "$@" 9>&-)
	fi
}

# pg_version BINDIR: the major.minor version of the binaries in BINDIR, e.g. 15.18.
pg_version() {
	"$1/pg_ctl" --version 2>/dev/null | sed -n 's/^pg_ctl (PostgreSQL) \([0-9][0-9.]*\).*/\1/p'
}

# find_bindir [MAJOR]: the directory of the newest pg_ctl found in PATH or in
# /usr/lib/postgresql/*/bin that also has initdb and postgres; with MAJOR, only a
# directory of that major version. Prints nothing when there is none.
find_bindir() {
	local want=${1:-} cand dir v
	local -a cands=()
	if cand=$(command -v pg_ctl 2>/dev/null); then
		cands+=("$(dirname "$(readlink -f "$cand")")")
	fi
	for dir in /usr/lib/postgresql/*/bin; do
		[[ -d $dir ]] && cands+=("$dir")
	done
	for dir in "${cands[@]}"; do
		[[ -x $dir/pg_ctl && -x $dir/initdb && -x $dir/postgres ]] || continue
		v=$(pg_version "$dir")
		[[ -n $v ]] || continue
		[[ -z $want || ${v%%.*} == "$want" ]] || continue
		printf '%s %s\n' "$v" "$dir"
	done | sort -V | tail -n 1 | cut -d' ' -f2-
}

# install_postgres: installs Debian's postgresql package.
install_postgres() {
	is_root || die "PostgreSQL is not installed and installing it needs root: run 'sudo apt-get install -y postgresql' and try again"
	command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get to install it with; install PostgreSQL (initdb, pg_ctl, postgres) and try again"
	log "PostgreSQL not found: installing Debian's postgresql package"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2 || die "apt-get update failed"
	apt-get install -y --no-install-recommends postgresql >&2 || die "apt-get install postgresql failed"
}

# bindir_for DATA: the binaries to run the cluster in DATA with: those of its
# major version when it exists, else the newest, installing PostgreSQL if needed.
bindir_for() {
	local data=$1 major="" dir
	if [[ -f $data/PG_VERSION ]]; then
		major=$(<"$data/PG_VERSION")
		dir=$(find_bindir "$major")
		[[ -n $dir ]] || die "the cluster in $data was made by PostgreSQL $major, whose binaries are not installed (apt-get install postgresql-$major), or remove it with: $0 stop $(dirname "$data")"
		printf '%s' "$dir"
		return
	fi
	dir=$(find_bindir)
	if [[ -z $dir ]]; then
		install_postgres
		dir=$(find_bindir)
		[[ -n $dir ]] || die "installed postgresql, but still no pg_ctl, initdb and postgres under /usr/lib/postgresql/*/bin or in PATH"
	fi
	printf '%s' "$dir"
}

ensure_postgres_user() {
	is_root || return 0
	if ! id -u postgres >/dev/null 2>&1; then
		log "creating the system user postgres"
		useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres ||
			die "could not create the postgres user"
	fi
}

url_for() { printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$1"; }

# running DIR: whether the cluster in DIR runs (needs its binaries).
running() {
	local dir=$1
	[[ -f $dir/data/PG_VERSION && -f $dir/data/postmaster.pid ]] || return 1
	local bin
	bin=$(find_bindir "$(<"$dir/data/PG_VERSION")")
	[[ -n $bin ]] || return 1
	as_owner "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

# port_in_use PORT: whether something accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# lock DIR: serializes commands on DIR (two `start`s at once would race in initdb).
lock() {
	if command -v flock >/dev/null; then
		exec 9>"$1.lock"
		flock -w 120 9 || die "another cluster.sh holds $1.lock for more than 120 s"
	fi
}

write_conf() {
	local dir=$1 port=$2 fast=off
	[[ ${WENGANG_PG_FAST:-} == 1 ]] && fast=on
	{
		echo "# written by cluster.sh at every start; edits are lost"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		echo "max_connections = 200"
		echo "shared_buffers = 128MB"
		echo "log_min_messages = warning"
		echo "log_min_duration_statement = -1"
		if [[ $fast == on ]]; then
			echo "# WENGANG_PG_FAST=1: for tests only, a crash may corrupt the cluster"
			echo "fsync = off"
			echo "synchronous_commit = off"
		fi
	} | as_owner tee "$dir/data/wengang.conf" >/dev/null
	printf '%s\n' "$port" | as_owner tee "$dir/port" >/dev/null
}

cmd_start() {
	local dir port
	dir=$(abs "${1:-$DEFAULT_DIR}")
	port=${2:-$DEFAULT_PORT}
	[[ $port =~ ^[0-9]+$ && $port -ge 1024 && $port -le 65535 ]] || die "port '$port' is not a number from 1024 to 65535"
	(( ${#dir} + 20 < 100 )) || die "$dir is too long for a unix socket path; use a shorter directory"
	[[ -e $dir && ! -d $dir ]] && die "$dir exists and is not a directory"
	if [[ -d $dir && ! -f $dir/$MARKER && -n $(ls -A "$dir") ]]; then
		die "$dir exists, is not empty and was not made by cluster.sh; choose another directory"
	fi

	mkdir -p "$(dirname "$dir")"
	lock "$dir"

	if running "$dir"; then
		local have
		have=$(<"$dir/port")
		[[ $have == "$port" ]] || log "already running in $dir on port $have (not $port)"
		url_for "$have"
		return
	fi

	ensure_postgres_user
	local bin
	bin=$(bindir_for "$dir/data")
	log "using PostgreSQL $(pg_version "$bin") from $bin"

	mkdir -p "$dir"
	touch "$dir/$MARKER"
	chmod 0700 "$dir"
	if is_root; then
		chown postgres: "$dir" "$dir/$MARKER"
	fi
	as_owner test -w "$dir" || die "postgres cannot write to $dir: a directory above it is not searchable by postgres; use a directory under /tmp"

	if [[ ! -f $dir/data/PG_VERSION ]]; then
		log "creating the cluster in $dir/data"
		local -a nosync=()
		[[ ${WENGANG_PG_FAST:-} == 1 ]] && nosync=(--no-sync)
		as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
			--auth-local=trust --auth-host=trust "${nosync[@]}" >&2 ||
			die "initdb failed"
		# Trust the unix socket and 127.0.0.1, nothing else (initdb also
		# lists ::1 and replication).
		printf '%s\n' \
			'# written by cluster.sh: a development cluster, never for real data' \
			'local all all            trust' \
			'host  all all 127.0.0.1/32 trust' |
			as_owner tee "$dir/data/pg_hba.conf" >/dev/null
		printf "\ninclude 'wengang.conf'\n" | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
	fi

	write_conf "$dir" "$port"
	if port_in_use "$port"; then
		die "something already listens on 127.0.0.1:$port; stop it or pass another port: $0 start $dir PORT"
	fi

	log "starting PostgreSQL on 127.0.0.1:$port (socket and log in $dir)"
	if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >&2; then
		log "pg_ctl start failed; the end of $dir/postgres.log:"
		tail -n 30 "$dir/postgres.log" >&2 || true
		die "PostgreSQL did not start"
	fi

	local i
	for ((i = 0; i < 60; i++)); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
			log "ready"
			url_for "$port"
			return
		fi
		sleep 0.5
	done
	tail -n 30 "$dir/postgres.log" >&2 || true
	die "PostgreSQL started but does not accept connections on 127.0.0.1:$port"
}

cmd_stop() {
	local dir
	dir=$(abs "${1:-$DEFAULT_DIR}")
	if [[ ! -e $dir ]]; then
		log "nothing in $dir: not running"
		rm -f "$dir.lock"
		return
	fi
	[[ -f $dir/$MARKER ]] || die "$dir was not made by cluster.sh; not touching it"
	lock "$dir"
	if running "$dir"; then
		local bin
		bin=$(find_bindir "$(<"$dir/data/PG_VERSION")")
		log "stopping PostgreSQL in $dir"
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 || die "pg_ctl stop failed"
	fi
	rm -rf -- "$dir"
	rm -f -- "$dir.lock"
	log "removed $dir"
}

cmd_url() {
	local dir
	dir=$(abs "${1:-$DEFAULT_DIR}")
	running "$dir" || die "no cluster runs in $dir; start one with: $0 start $dir"
	url_for "$(<"$dir/port")"
}

cmd_status() {
	local dir
	dir=$(abs "${1:-$DEFAULT_DIR}")
	if running "$dir"; then
		log "running in $dir on 127.0.0.1:$(<"$dir/port")"
	else
		log "not running in $dir"
		return 3
	fi
}

main() {
	[[ $# -ge 1 ]] || usage
	local cmd=$1
	shift
	case $cmd in
	start) [[ $# -le 2 ]] || usage; cmd_start "$@" ;;
	stop) [[ $# -le 1 ]] || usage; cmd_stop "$@" ;;
	url) [[ $# -le 1 ]] || usage; cmd_url "$@" ;;
	status) [[ $# -le 1 ]] || usage; cmd_status "$@" ;;
	-h | --help | help) usage ;;
	*) log "unknown command '$cmd'"; usage ;;
	esac
}

main "$@"
