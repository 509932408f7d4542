#!/usr/bin/env bash
# loadtest.sh measures the portal's list page against a static page of the
# same size served by the same process: it installs wrk (apt) when missing,
# starts internal/loadtest/portalload (a round of 50,000 enterprises in a
# database of its own on the test cluster), runs
# wrk -t2 -c100 -d20s --latency against page 1 of the list and against
# /static-baseline.html, and prints p50/p99 latency and requests/s of both
# and the throughput ratio (target: the list keeps at least a third of the
# static page's throughput).
#
# Environment: WENGANG_TEST_DATABASE_URL (default: deploy/postgres/cluster.sh
# url), LOADTEST_N (enterprises, default 50000), LOADTEST_DURATION (default
# 20s), LOADTEST_MIGRATIONS (a directory of migrations to apply instead of
# the embedded ones).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
	echo "loadtest.sh: installing wrk" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >&2
fi

db=${WENGANG_TEST_DATABASE_URL:-$(deploy/postgres/cluster.sh url)}
n=${LOADTEST_N:-50000}
duration=${LOADTEST_DURATION:-20s}
tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/portalload" ./internal/loadtest/portalload
args=(--db "$db" --n "$n")
if [ -n "${LOADTEST_MIGRATIONS:-}" ]; then args+=(--migrations "$LOADTEST_MIGRATIONS"); fi
"$tmp/portalload" "${args[@]}" >"$tmp/ready" &
pid=$!
for _ in $(seq 1 600); do
	if grep -q '^ready ' "$tmp/ready" 2>/dev/null; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then echo "loadtest.sh: portalload exited" >&2; exit 1; fi
	sleep 0.2
done
read -r _ base path size <"$tmp/ready"
echo "portal at $base: $n enterprises, first page $size bytes"

# measure NAME URL: runs wrk and prints NAME p50 p99 requests/s.
measure() {
	local out
	out=$(wrk -t2 -c100 -d"$duration" --latency "$2")
	echo "$out" >"$tmp/$1.wrk"
	local p50 p99 rps
	p50=$(awk '/^ +50%/ {print $2}' <<<"$out")
	p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "loadtest.sh: $1 answered errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	printf '%-8s p50 %-10s p99 %-10s %12s req/s\n' "$1" "$p50" "$p99" "$rps"
	echo "$rps" >"$tmp/$1.rps"
}

curl -fsS -o /dev/null "$base$path" && curl -fsS -o /dev/null "$base/static-baseline.html" # warm up
measure list "$base$path"
measure static "$base/static-baseline.html"
awk -v l="$(cat "$tmp/list.rps")" -v s="$(cat "$tmp/static.rps")" 'BEGIN {
	r = l / s
	printf "ratio    list/static throughput %.2f (target >= 0.33): %s\n", r, (r >= 1/3 ? "OK" : "BELOW TARGET")
	exit (r >= 1/3 ? 0 : 1)
}'
