#!/usr/bin/env bash
# image_deps.sh - checks that deploy/Dockerfile's final stage installs every shared library the
# installed programs need: installs the build tree into a scratch prefix (as the image's build
# stage does), reads each ELF file's NEEDED entries, finds the Debian package that provides
# each library on this machine, and fails when that package is neither in the final stage's
# apt-get install list (as check_dockerfile.mjs reads it) nor part of debian:bookworm-slim.
#   tests/deploy/image_deps.sh BUILD_DIR NODE_DIR DOCKERFILE UID
set -euo pipefail

build=$1 node_dir=$2 dockerfile=$3 uid=$4
# Essential in debian:bookworm-slim (apt needs them), so present without an install.
base=(libc6 libgcc-s1 libstdc++6 zlib1g)
stage=$(mktemp -d)
listed=$stage.packages
trap 'rm -rf "$stage" "$listed"' EXIT
node "$node_dir/check_dockerfile.mjs" --uid "$uid" --print-runtime-packages "$dockerfile" >"$listed"
cmake --install "$build" --prefix "$stage" >/dev/null

mapfile -t elves < <(find "$stage" -type f -exec sh -c \
	'head -c 4 "$1" | grep -q "^.ELF" && echo "$1"' sh {} \; | sort)
if [ ${#elves[@]} -eq 0 ]; then
	echo "image_deps: SKIPPED: this tree installs no program or library yet"
	exit 77
fi

# The package owning a library file. With merged /usr, dpkg knows a file by either its /lib
# or its /usr/lib path, and the soname link or its target.
owner() {
	local real c p
	real=$(readlink -f "$1")
	for c in "$1" "$real" "${real#/usr}" "/usr$1"; do
		p=$(dpkg -S "$c" 2>/dev/null | awk -F: 'NR == 1 { print $1 }') || true
		if [ -n "$p" ]; then
			echo "$p"
			return 0
		fi
	done
}

fail=0
for f in "${elves[@]}"; do
	while read -r lib; do
		[ -n "$(find "$stage" -name "$lib" -print -quit)" ] && continue
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found { print $NF; found = 1 }')
		if [ -z "$path" ]; then
			echo "image_deps: ${f#"$stage"/} needs $lib, which this machine does not have"
			fail=1
			continue
		fi
		pkg=$(owner "$path")
		if [ -z "$pkg" ]; then
			echo "image_deps: no Debian package provides $path (needed by ${f#"$stage"/})"
			fail=1
		elif grep -qx "$pkg" "$listed" || [[ " ${base[*]} " == *" $pkg "* ]]; then
			echo "ok ${f#"$stage"/}: $lib from $pkg"
		else
			echo "image_deps: ${f#"$stage"/} needs $lib from $pkg, not installed in the final stage"
			fail=1
		fi
	done < <(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
exit "$fail"
