#!/usr/bin/env bash
# systemd_verify.sh - checks deploy/systemd's units with systemd itself, offline (no running
# systemd needed): `systemd-analyze verify` on a scratch root holding the units, the distribution's
# own units they depend on, and stand-in executables at the ExecStart paths; any warning fails
# (verify exits 0 on unknown keys and bad values, so its output is checked too). Then
# `systemd-analyze security --offline` must rate the collector's exposure 2.0 or lower.
#   tests/deploy/systemd_verify.sh SRC_DIR
set -euo pipefail

src=$1
if ! command -v systemd-analyze >/dev/null; then
	echo "systemd_verify: SKIPPED: systemd-analyze is not installed (Debian package systemd)"
	exit 77
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
for b in gbatch-collector gbatch-processor; do
	install -m 0755 /bin/true "$root/usr/local/bin/$b"
done
cp "$src/deploy/systemd/gbatch-collector.service" "$src/deploy/systemd/gbatch-processor@.service" \
	"$root/etc/systemd/system/"
ln -s gbatch-processor@.service "$root/etc/systemd/system/gbatch-processor@demo.service"

units=(/etc/systemd/system/gbatch-collector.service /etc/systemd/system/gbatch-processor@demo.service)
rc=0
out=$(cd "$root" && systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
	echo "systemd_verify: systemd-analyze verify (exit $rc):"
	echo "$out"
	exit 1
fi
echo "systemd_verify: verify: no warnings for ${units[*]##*/}"

if ! sec=$(systemd-analyze security --offline=yes --threshold=20 --root="$root" \
	/etc/systemd/system/gbatch-collector.service 2>&1); then
	echo "$sec"
	echo "systemd_verify: gbatch-collector.service is exposed above 2.0"
	exit 1
fi
echo "systemd_verify: security: ${sec##*$'\n'}"
