#!/usr/bin/env bash
# run.sh - THE test command: installs what is missing, builds and runs every test.
#
# Stages, in order, stopping at the first failure:
#   normal  RelWithDebInfo build with -Werror, every test
#   asan    the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan    the tests labelled "tsan" (the ring and the threaded code) under ThreadSanitizer
#   fuzz    clang + libFuzzer (with ASan+UBSan): each fuzz target runs briefly from its seed
#           corpus (GBATCH_FUZZ_SECONDS, default 20)
# GBATCH_TEST_STAGES="normal asan" picks stages; GBATCH_BUILD_ROOT moves the build trees
# (default build/ in the source tree). The statsd test server is installed under the build
# root and named to the tests by GBATCH_STATSD_DIR. Exits non-zero on any failure.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${GBATCH_BUILD_ROOT:-$src/build}
stages=${GBATCH_TEST_STAGES:-normal asan tsan fuzz}
jobs=$(nproc 2>/dev/null || echo 2)

"$src/deploy/install-deps.sh" test

# The StatsD daemon the collector's integration tests send to: pinned by tests/statsd's
# package-lock.json and installed with npm ci into the build tree, never the source tree.
install_statsd() {
	local dir=$build_root/statsd
	if [ -f "$dir/node_modules/statsd/stats.js" ] &&
		cmp -s "$src/tests/statsd/package-lock.json" "$dir/package-lock.json"; then
		return 0
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$src/tests/statsd/package.json" "$src/tests/statsd/package-lock.json" "$dir/"
	(cd "$dir" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)
}

run_stage() {
	local name=$1 dir=$build_root/$1
	shift
	local -a cfg=("$@")
	echo "== gbatch tests: $name build =="
	cmake -S "$src" -B "$dir" -DGBATCH_WERROR=ON "${cfg[@]}" >"$build_root/$name.configure.log" ||
		{ cat "$build_root/$name.configure.log"; return 1; }
	cmake --build "$dir" -j "$jobs" >"$build_root/$name.build.log" 2>&1 ||
		{ tail -60 "$build_root/$name.build.log"; return 1; }
	local -a filter=()
	[ "$name" = tsan ] && filter=(-L tsan)
	[ "$name" = fuzz ] && filter=(-L fuzz)
	ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${filter[@]}"
}

mkdir -p "$build_root"
install_statsd
export GBATCH_STATSD_DIR=$build_root/statsd
for stage in $stages; do
	case $stage in
	normal) run_stage normal ;;
	asan) ASAN_OPTIONS=detect_leaks=1 run_stage asan -DGBATCH_SANITIZE=address,undefined \
		-DCMAKE_C_COMPILER=clang ;;
	tsan) run_stage tsan -DGBATCH_SANITIZE=thread -DCMAKE_C_COMPILER=clang ;;
	fuzz) run_stage fuzz -DGBATCH_FUZZ=ON -DGBATCH_SANITIZE=address,undefined \
		-DGBATCH_FUZZ_SECONDS="${GBATCH_FUZZ_SECONDS:-20}" -DCMAKE_C_COMPILER=clang ;;
	*)
		echo "run.sh: unknown stage \"$stage\" in GBATCH_TEST_STAGES (use normal, asan, tsan, fuzz)" >&2
		exit 2
		;;
	esac
done
