#!/usr/bin/env bash
# node_setup.sh - puts the deploy checkers and their pinned validators in NODE_DIR (build
# tree): copies package.json, package-lock.json and the *.mjs checkers, and runs npm ci when
# the installed tree does not match the lock file (an ESM import resolves node_modules next
# to the importing file, hence the copies).
#   tests/deploy/node_setup.sh SRC_DIR NODE_DIR
set -euo pipefail

src=$1 dir=$2
mkdir -p "$dir"
cp "$src"/*.mjs "$dir/"
if [ -d "$dir/node_modules" ] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
	echo "node_setup: validators already installed in $dir"
	exit 0
fi
rm -rf "$dir/node_modules"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "node_setup: installed $(cd "$dir" && npm ls --depth=0 --parseable | tail -n +2 | wc -l) validators in $dir"
