#!/usr/bin/env bash
# lint_dockerfile.sh - lints the Dockerfile with two real linters from npm, dockerfilelint
# (bugs and practices: apt-get flags, cache cleanup) and dockerfile-utils (the parser of the
# Docker language server: syntax, instructions, flags), then checks what the image promises
# with check_dockerfile.mjs.
#   tests/deploy/lint_dockerfile.sh NODE_DIR DOCKERFILE UID
set -euo pipefail

node_dir=$1 dockerfile=$2 uid=$3
"$node_dir/node_modules/.bin/dockerfilelint" "$dockerfile"
out=$("$node_dir/node_modules/.bin/dockerfile-utils" lint "$dockerfile" 2>&1) || {
	echo "$out"
	exit 1
}
if [ -n "$out" ]; then
	echo "$out"
	echo "lint_dockerfile: dockerfile-utils reports problems"
	exit 1
fi
echo "lint_dockerfile: dockerfile-utils: no problems"
node "$node_dir/check_dockerfile.mjs" --uid "$uid" "$dockerfile"
