#!/usr/bin/env bash
# install.sh BUILD_DIR CC [SANITIZER_FLAGS] - installs the build into a temporary prefix, then
# builds a program outside the tree against it with pkg-config (shared, then static) and
# examples/ with CMake's find_package(gbatch) (shared, then static), runs them, checks that
# libgbatch.so exports gb_ symbols only, that the man pages render cleanly and carry every
# flag of their program's --help, and that the stand-in is not installed. Without
# SANITIZER_FLAGS it also builds the tree as the image does (-DGBATCH_BUILD_TESTS=OFF
# -DGBATCH_MAN=OFF) and checks that it installs the same files, man pages aside.
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
if [ ! -L "$libdir/libgbatch.so" ] || [ ! -e "$libdir/libgbatch.so.1" ]; then
	echo "libgbatch.so / .so.1 not installed in $libdir" >&2
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

exported=$(nm -D --defined-only "$libdir/libgbatch.so.1" | awk '{ print $3 }')
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
# The CMake package, as a user's project uses it: examples/ on their own, then a static link.
cmake_user() { # SRC BUILD [cmake args...]
	local dir=$1 out=$2
	shift 2
	if ! { cmake -S "$dir" -B "$out" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_COMPILER="$cc" \
		-DCMAKE_C_FLAGS="-Wall -Werror $san" "$@" && cmake --build "$out"; } >"$out.log" 2>&1; then
		cat "$out.log" >&2
		exit 1
	fi
}
cmake_user "$src/examples" "$tmp/examples"
"$tmp/examples/custom_reporter" >out_cmake
grep -q '^batch.total_processing took' out_cmake
[ -x "$tmp/examples/prometheus_reporter" ] || { echo "examples: no prometheus_reporter" >&2; exit 1; }
mkdir "$tmp/user-static"
cp "$src/examples/custom_reporter.c" "$tmp/user-static/prog.c"
cat >"$tmp/user-static/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(user_static LANGUAGES C)
find_package(gbatch 0.2 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE gbatch::gbatch_static)
CMAKE
cmake_user "$tmp/user-static" "$tmp/user-static/build"
"$tmp/user-static/build/prog" >out_cmake_static
grep -q '^batch.total_processing took' out_cmake_static
if ldd "$tmp/user-static/build/prog" | grep -q libgbatch; then
	echo "gbatch::gbatch_static links libgbatch.so" >&2
	exit 1
fi

# Man pages: one per program, no groff warning, every flag of --help on the page.
mandir=$tmp/prefix/share/man/man1
for prog in gbatch-collector gbatch-processor gbatch-emit; do
	page=$mandir/$prog.1
	[ -f "$page" ] || { echo "not installed: $page" >&2; exit 1; }
	warnings=$(groff -man -ww -z "$page" 2>&1)
	[ -z "$warnings" ] || { echo "$page: groff warnings: $warnings" >&2; exit 1; }
	text=$(groff -man -Tascii -rLL=300n -rHY=0 -P-cbou "$page")
	flags=$("$tmp/prefix/bin/$prog" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
	for flag in $flags; do
		grep -qe "$flag" <<<"$text" || { echo "$page lacks $flag" >&2; exit 1; }
	done
	for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "$page: no $section section" >&2; exit 1; }
	done
done
if [ -e "$tmp/prefix/bin/gbatch-stub-gemini" ]; then
	echo "the Gemini stand-in is installed: it is a test tool" >&2
	exit 1
fi

# The image's build: no tests (so no Check), no man pages; the same product installed.
if [ -z "$san" ]; then
	if ! { cmake -S "$src" -B "$tmp/image-build" -DCMAKE_C_COMPILER="$cc" \
		-DGBATCH_BUILD_TESTS=OFF -DGBATCH_MAN=OFF &&
		cmake --build "$tmp/image-build" -j "$(nproc)" &&
		cmake --install "$tmp/image-build" --prefix "$tmp/image-prefix"; } >"$tmp/image-build.log" 2>&1
	then
		tail -40 "$tmp/image-build.log" >&2
		exit 1
	fi
	if [ -d "$tmp/image-build/tests" ]; then
		echo "-DGBATCH_BUILD_TESTS=OFF still configured tests/" >&2
		exit 1
	fi
	list() { (cd "$1" && find . ! -type d ! -path './share/man/*' | sort); }
	if ! diff <(list "$tmp/prefix") <(list "$tmp/image-prefix") >"$tmp/image.diff"; then
		echo "the image's build installs other files than the tree's:" >&2
		cat "$tmp/image.diff" >&2
		exit 1
	fi
fi

echo "install: headers, libgbatch.so/.a, gbatch.pc, find_package(gbatch) and 3 man pages work from $tmp/prefix; exports: $(echo "$exported" | wc -l) gb_ symbols, $(echo "$globals" | wc -l) gb_/gb__ globals in the archive"
