#!/usr/bin/env bash
# install-deps.sh - installs the Debian bookworm packages gbatch needs, if any are missing.
#   deploy/install-deps.sh build   what building and running the pair needs
#   deploy/install-deps.sh test    that plus what the test suite needs
# As root it runs apt-get; otherwise it prints the exact command to run and exits 2.
set -euo pipefail

build_pkgs=(cmake make gcc pkg-config libcurl4-openssl-dev libjansson-dev libbsd-dev check
	libmicrohttpd-dev help2man)
test_pkgs=(clang libclang-rt-14-dev procps util-linux python3 curl prometheus-pushgateway prometheus
	shellcheck systemd valgrind groff-base)

case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*)
	echo "usage: $0 build|test" >&2
	exit 2
	;;
esac

missing=()
# node and npm (for the statsd test server) may come from Debian or from another node
# distribution that bundles npm: only install Debian's when the commands are absent.
if [ "${1:-build}" = test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
	want+=(nodejs npm)
fi
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "gbatch: missing Debian packages: ${missing[*]}" >&2
	echo "gbatch: install them as root with:" >&2
	echo "    apt-get update && $cmd" >&2
	exit 2
fi
echo "gbatch: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
