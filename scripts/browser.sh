#!/usr/bin/env bash
# browser.sh installs what the portal's headless-browser test needs, Debian's
# chromium and the Noto CJK fonts (so that Chinese renders, not boxes), with
# apt-get when they are missing, and prints chromium's path. Idempotent: when
# both are there it installs nothing.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'install ok installed'; then
	need+=(fonts-noto-cjk)
fi
if ((${#need[@]} > 0)); then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	echo "browser.sh: installing ${need[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
command -v chromium
