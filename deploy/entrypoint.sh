#!/bin/sh
# entrypoint.sh - the container image's entry point: the first argument picks the program, so
# one image serves every container of the pod.
#   collector [FLAGS]   gbatch-collector
#   processor [FLAGS]   gbatch-processor
#   emit [ARGS]         gbatch-emit
#   shard [FLAGS]       gbatch-processor on the shard of a Kubernetes Indexed Job:
#                       $GBATCH_SHARD_DIR/questions-$JOB_COMPLETION_INDEX.txt and
#                       $GBATCH_SHARD_DIR/content-$JOB_COMPLETION_INDEX.* (every match, in order);
#                       the answers go to $GBATCH_OUTPUT_DIR/answers-$JOB_COMPLETION_INDEX.json
#                       when GBATCH_OUTPUT_DIR is set, else to stdout
#   anything else       run as given (a shell step, for instance)
set -eu

shard() {
	dir=${GBATCH_SHARD_DIR:-/etc/gbatch/shards}
	i=${JOB_COMPLETION_INDEX:?"shard: JOB_COMPLETION_INDEX is not set (not an Indexed Job?)"}
	case $i in
	'' | *[!0-9]*)
		echo "gbatch-entrypoint: shard: JOB_COMPLETION_INDEX \"$i\" is not a number" >&2
		exit 2
		;;
	esac
	questions=$dir/questions-$i.txt
	if [ ! -f "$questions" ]; then
		echo "gbatch-entrypoint: shard $i: no $questions" >&2
		exit 2
	fi
	set -- "$@" --questions "$questions"
	if [ -n "${GBATCH_OUTPUT_DIR:-}" ]; then
		set -- "$@" --output "$GBATCH_OUTPUT_DIR/answers-$i.json"
	fi
	found=0
	for f in "$dir"/content-"$i".*; do
		[ -f "$f" ] || continue
		set -- "$@" "$f"
		found=1
	done
	if [ "$found" -eq 0 ]; then
		echo "gbatch-entrypoint: shard $i: no $dir/content-$i.*" >&2
		exit 2
	fi
	exec gbatch-processor "$@"
}

cmd=${1:-collector}
[ $# -gt 0 ] && shift
case $cmd in
collector) exec gbatch-collector "$@" ;;
processor) exec gbatch-processor "$@" ;;
emit) exec gbatch-emit "$@" ;;
shard) shard "$@" ;;
*) exec "$cmd" "$@" ;;
esac
