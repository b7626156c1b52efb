#!/bin/sh
# entrypoint.sh - the container image's entry point: the first argument picks the program, so
# one image serves every container of the pod.
#   collector [FLAGS]   gbatch-collector
#   processor [FLAGS]   gbatch-processor
#   emit [ARGS]         gbatch-emit
#   shard [FLAGS]       gbatch-processor on one shard of a jobs file, for a Kubernetes Indexed
#                       Job: pod i of n runs the jobs on the lines L with (L - 1) % n == i,
#                         gbatch-processor --jobs $GBATCH_JOBS_FILE --shard i/n FLAGS...
#                       i is $JOB_COMPLETION_INDEX (set by Kubernetes), n $GBATCH_SHARD_COUNT
#                       (the Job's completions); GBATCH_JOBS_FILE defaults to
#                       /etc/gbatch/jobs/jobs.jsonl. The results go to stdout (the pod's log),
#                       or, with GBATCH_OUTPUT_DIR (a writable directory, a shared volume), to
#                       $GBATCH_OUTPUT_DIR/results-i.jsonl with --resume: a container run again
#                       over the same results file skips the jobs already there.
#                       Anything missing or wrong exits 2 with a message naming it.
#   anything else       run as given (a shell step, for instance)
set -eu

# refuse WHY: the shard cannot run; exits 2, as gbatch-processor does on a usage error.
refuse() {
	echo "gbatch-entrypoint: shard: $1" >&2
	exit 2
}

# whole NAME VALUE HINT: refuses unless VALUE is a whole number (of at most 9 digits, so that
# the shell compares it safely); HINT says where NAME should have come from.
whole() {
	case $2 in
	'') refuse "$1 is not set ($3)" ;;
	*[!0-9]*) refuse "$1 \"$2\" is not a whole number" ;;
	??????????*) refuse "$1 \"$2\" is too large" ;;
	esac
}

shard() {
	i=${JOB_COMPLETION_INDEX-}
	n=${GBATCH_SHARD_COUNT-}
	jobs=${GBATCH_JOBS_FILE:-/etc/gbatch/jobs/jobs.jsonl}
	out=${GBATCH_OUTPUT_DIR-}
	whole JOB_COMPLETION_INDEX "$i" "not an Indexed Job?"
	whole GBATCH_SHARD_COUNT "$n" "set it to the Job's completions"
	[ "$n" -gt 0 ] || refuse "GBATCH_SHARD_COUNT must be at least 1"
	[ "$i" -lt "$n" ] || refuse "JOB_COMPLETION_INDEX $i is not below GBATCH_SHARD_COUNT $n \
(the Job's completions and GBATCH_SHARD_COUNT must agree)"
	[ -f "$jobs" ] || refuse "no jobs file \"$jobs\" (GBATCH_JOBS_FILE)"
	[ -z "$out" ] && exec gbatch-processor --jobs "$jobs" --shard "$i/$n" "$@"
	[ -d "$out" ] || refuse "GBATCH_OUTPUT_DIR \"$out\" is not a directory"
	exec gbatch-processor --jobs "$jobs" --shard "$i/$n" --resume \
		--output "$out/results-$i.jsonl" "$@"
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
