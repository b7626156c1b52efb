#!/usr/bin/env bash
# tests/deploy/shellcheck.sh - runs shellcheck on every shell script of the project: the demo,
# the test command and CI entry point, the image's entry point, the dependency installer and the
# test scripts (any finding fails).
#   tests/deploy/shellcheck.sh SRC_DIR
set -euo pipefail

src=$1
if ! command -v shellcheck >/dev/null; then
	echo "shellcheck: SKIPPED: shellcheck is not installed (Debian package shellcheck)"
	exit 77
fi
mapfile -t scripts < <(cd "$src" && ls .ci/run deploy/*.sh tests/run.sh tests/deploy/*.sh tests/integration/*.sh \
	tests/bench/*.sh cmake/*.sh)
(cd "$src" && shellcheck "${scripts[@]}")
echo "shellcheck: ${#scripts[@]} scripts clean"
