#!/usr/bin/env bash
# tests/deploy/shellcheck.sh - runs shellcheck on the image's entry point, the dependency
# installer and the deployment tests (any finding fails).
#   tests/deploy/shellcheck.sh SRC_DIR
set -euo pipefail

src=$1
if ! command -v shellcheck >/dev/null; then
	echo "shellcheck: SKIPPED: shellcheck is not installed (Debian package shellcheck)"
	exit 77
fi
mapfile -t scripts < <(cd "$src" && ls deploy/entrypoint.sh deploy/install-deps.sh tests/deploy/*.sh)
(cd "$src" && shellcheck "${scripts[@]}")
echo "shellcheck: ${#scripts[@]} scripts clean"
