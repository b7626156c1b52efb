#!/bin/sh
# help2man-input.sh PROGRAM OPTION - runs PROGRAM OPTION for help2man. The programs' --help
# opens with "usage: NAME [flags...]" wrapped over several indented lines and, for a second
# form, a line "       NAME ..."; help2man reads a synopsis only from "Usage:" and "or:"
# lines, so this joins the wrapped lines and marks the second forms.
set -eu
prog=$1 opt=$2
[ "$opt" = --help ] || exec "$prog" "$opt"
name=${prog##*/}
"$prog" --help | awk -v name="$name" '
	done { print; next }
	NR == 1 && sub(/^usage: /, "Usage: ") { line = $0; next }
	NR == 1 { print; done = 1; next }
	$0 ~ "^ +" name " " { print line; sub(/^ +/, ""); line = "  or: " $0; next }
	/^ +[[(]/ { sub(/^ +/, " "); line = line $0; next }
	{ print line; print; done = 1 }
	END { if (!done) print line }'
