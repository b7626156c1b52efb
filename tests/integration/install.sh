#!/usr/bin/env bash
# install.sh BUILD_DIR CC [SANITIZER_FLAGS] - installs the build into a temporary prefix, then
# builds a program outside the tree against it with pkg-config (shared, then static), runs
# both, and checks that libgbatch.so exports gb_ symbols only.
set -euo pipefail
build=$1 cc=$2 san=${3:-}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
pcdir=$(dirname "$(find "$tmp/prefix" -name gbatch.pc)")
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir gbatch)
for f in include/gbatch/telemetry.h include/gbatch/processor.h; do
	[ -f "$tmp/prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done
[ -f "$libdir/libgbatch.a" ] || { echo "libgbatch.a not installed in $libdir" >&2; exit 1; }
if [ ! -L "$libdir/libgbatch.so" ] || [ ! -e "$libdir/libgbatch.so.0" ]; then
	echo "libgbatch.so / .so.0 not installed in $libdir" >&2
	exit 1
fi

mkdir "$tmp/user"
cp "$src/examples/custom_reporter.c" "$tmp/user/prog.c"
cd "$tmp/user"
export PKG_CONFIG_PATH=$pcdir
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Werror $san prog.c $(pkg-config --cflags --libs gbatch) -o prog_shared
LD_LIBRARY_PATH=$libdir ./prog_shared >out_shared
grep -q '^batch.total_processing took' out_shared
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Werror $san prog.c $(pkg-config --cflags gbatch) "$libdir/libgbatch.a" \
	$(pkg-config --static --libs gbatch | sed 's/-lgbatch\b//') -o prog_static
./prog_static >out_static
grep -q '^batch.total_processing took' out_static
if ldd prog_static | grep -q libgbatch; then
	echo "prog_static links libgbatch.so" >&2
	exit 1
fi

exported=$(nm -D --defined-only "$libdir/libgbatch.so.0" | awk '{ print $3 }')
bad=$(echo "$exported" | grep -v '^gb_' || true)
if [ -n "$bad" ]; then
	echo "libgbatch.so exports non-gb_ symbols:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "$exported" | grep -qx gb_tele_new
# Every global the archive defines is ours too: a user's own fatal() or log_init() must link.
globals=$(nm -g --defined-only "$libdir/libgbatch.a" | awk 'NF == 3 { print $3 }')
bad=$(echo "$globals" | grep -Ev '^gb__?[a-z]' || true)
if [ -n "$bad" ]; then
	echo "libgbatch.a defines globals without the gb_ or gb__ prefix:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "install: headers, libgbatch.so/.a and gbatch.pc work from $tmp/prefix; exports: $(echo "$exported" | wc -l) gb_ symbols, $(echo "$globals" | wc -l) gb_/gb__ globals in the archive"
