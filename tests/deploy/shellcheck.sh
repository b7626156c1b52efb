#!/usr/bin/env bash
# tests/deploy/shellcheck.sh - runs shellcheck on the deployment and test scripts (warnings and errors fail).
#   tests/deploy/shellcheck.sh SRC_DIR
set -euo pipefail

src=$1
if ! command -v shellcheck >/dev/null; then
	echo "shellcheck: SKIPPED: shellcheck is not installed (Debian package shellcheck)"
	exit 77
fi
mapfile -t scripts < <(cd "$src" && ls deploy/*.sh tests/deploy/*.sh tests/run.sh .ci/run)
(cd "$src" && shellcheck "${scripts[@]}")
echo "shellcheck: ${#scripts[@]} scripts clean"
