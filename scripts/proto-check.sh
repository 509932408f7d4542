#!/usr/bin/env bash
# Checks and regenerates the protobuf contracts in proto/ (buf v2, buf.yaml
# and buf.gen.yaml at the repository root). Runs from anywhere; works on the
# repository root.
#
#   scripts/proto-check.sh [check]       buf lint, buf format, and the
#                                        committed generated Go is what
#                                        buf generate gives now (CI)
#   scripts/proto-check.sh generate      buf format -w, then regenerate the
#                                        Go beside the .proto files, removing
#                                        generated files of deleted .proto files
#   scripts/proto-check.sh breaking REF  buf breaking against the contracts at
#                                        git ref REF (a branch, tag, commit or
#                                        HEAD~n that this clone has)
#
# buf is the tool of tools/buf.mod; the code generators are the tool lines
# of go.mod, run with `go tool` (see buf.gen.yaml). Nothing comes from the
# BSR.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

buf() { go tool -modfile=tools/buf.mod buf "$@"; }

# generated lists the generated Go files under a directory, relative to it,
# sorted.
generated() {
	(cd "$1" && find . -type f \( -name '*.pb.go' -o -name '*.connect.go' \) | sed 's|^\./||' | LC_ALL=C sort)
}

# generate_into writes the generated Go of proto/ into DIR/proto.
generate_into() {
	buf generate --output "$1"
}

check() {
	echo "buf lint"
	buf lint
	echo "buf format"
	if ! buf format -d --exit-code; then
		echo "proto-check: .proto files are not buf-formatted; run: scripts/proto-check.sh generate" >&2
		exit 1
	fi
	echo "generated code up to date"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	generate_into "$tmp"
	# Compare the set of generated files and then each file: a stale file,
	# a missing one and one left over from a deleted .proto all fail.
	if ! diff -u <(generated proto) <(generated "$tmp/proto") >"$tmp/files.diff"; then
		echo "proto-check: the generated files in proto/ differ from what buf generate gives (- committed, + expected):" >&2
		cat "$tmp/files.diff" >&2
		echo "run: scripts/proto-check.sh generate" >&2
		exit 1
	fi
	stale=0
	while read -r f; do
		if ! cmp -s "proto/$f" "$tmp/proto/$f"; then
			echo "proto-check: proto/$f is stale" >&2
			diff -u "proto/$f" "$tmp/proto/$f" | head -40 >&2 || true
			stale=1
		fi
	done < <(generated proto)
	if [ "$stale" -ne 0 ]; then
		echo "run: scripts/proto-check.sh generate" >&2
		exit 1
	fi
	echo "contracts ok"
}

generate() {
	buf format -w
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	generate_into "$tmp"
	# Remove generated files whose .proto is gone, then copy the fresh ones
	# over: proto/ then holds exactly what buf generate gives.
	while read -r f; do
		if [ ! -e "$tmp/proto/$f" ]; then
			echo "removing stale proto/$f"
			rm -f "proto/$f"
		fi
	done < <(generated proto)
	while read -r f; do
		mkdir -p "$(dirname "proto/$f")"
		cp "$tmp/proto/$f" "proto/$f"
	done < <(generated "$tmp/proto")
	echo "generated: $(generated proto | wc -l) files in proto/"
}

breaking() {
	ref=${1:?usage: scripts/proto-check.sh breaking REF}
	if ! sha=$(git rev-parse --verify --quiet "$ref^{commit}"); then
		echo "proto-check: git ref $ref is not in this clone; in a shallow CI clone, fetch it first," >&2
		echo "  e.g. git fetch --depth=1 origin main:refs/remotes/origin/main, then use origin/main" >&2
		exit 2
	fi
	if ! git ls-tree -r --name-only "$sha" -- proto | grep -q '\.proto$'; then
		# Before the contracts' first commit there is nothing to compare
		# with; buf itself would fail with "had no .proto files".
		echo "proto-check: $ref ($sha) has no .proto files under proto/: nothing to compare"
		exit 0
	fi
	echo "buf breaking against $ref ($sha)"
	buf breaking --against ".git#ref=$sha"
	echo "no breaking changes against $ref"
}

case "${1:-check}" in
check) check ;;
generate) generate ;;
breaking)
	shift
	breaking "$@"
	;;
*)
	echo "usage: scripts/proto-check.sh [check | generate | breaking REF]" >&2
	exit 2
	;;
esac
