#!/usr/bin/env bash
# The one test command (README: `make test`). It installs and starts what
# the tests need — a private PostgreSQL cluster, from Debian's packages when
# the machine has none, and headless Chromium with CJK fonts — runs gofmt, go vet, the contract checks, every Go
# test with the database tests executed, and a short run of every fuzz
# target; then tears the cluster down.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

pgdir=${WENGANG_TEST_PG_DIR:-/tmp/wengang-test-pg}
pgport=${WENGANG_TEST_PG_PORT:-55439}
fuzztime=${FUZZTIME:-4s}

step() { printf '\n==> %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "contracts: buf lint, format, generated code up to date"
scripts/proto-check.sh

step "PostgreSQL: private cluster in $pgdir on port $pgport"
export WENGANG_PG_FAST=1
deploy/postgres/cluster.sh stop "$pgdir" >/dev/null 2>&1 || true
url=$(deploy/postgres/cluster.sh start "$pgdir" "$pgport")
trap 'deploy/postgres/cluster.sh stop "$pgdir" >/dev/null 2>&1 || true' EXIT
export WENGANG_TEST_DATABASE_URL="$url"

step "headless Chromium and CJK fonts for the portal's browser test"
scripts/browser.sh

step "go test ./..."
go test -count=1 ./...

step "fuzz: every target for $fuzztime"
# Every Fuzz* function in every package, one at a time (go test -fuzz
# takes one target per run).
for file in $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'); do
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		pkg="./$(dirname "$file")"
		echo "fuzz $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/wengang-fuzz.log 2>&1 || { cat /tmp/wengang-fuzz.log; exit 1; }
	done
done

echo
echo "all tests passed"
