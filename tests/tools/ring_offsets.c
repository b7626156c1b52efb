/*
 * ring_offsets.c - prints the byte layout of a ring segment's header page, taken from
 * common/ring_layout.h with offsetof and sizeof, as one JSON object, so that the Python
 * tests that read or damage a segment (tests/integration/collector_it.py, guarantees_it.py)
 * never retype an offset:
 *
 *   ring-offsets
 *   {"header_page_size": 4096, "line": 128, ..., "tail": 128, "head": 384, ...}
 *
 * Sizes are in bytes; "<field>_size" is the size of that field; "header_page_size" is
 * GB_RL_HEADER_SIZE (the field "header_size" is its offset in the identity line).
 */
#include <stddef.h>
#include <stdio.h>

#include "ring_layout.h"

#define FIELD(name)                                                                             \
	{ #name, offsetof(gb_rl_header, name), sizeof(((gb_rl_header *)0)->name) }
#define SLOT_FIELD(name)                                                                        \
	{ "producer_" #name, offsetof(gb_rl_producer, name), sizeof(((gb_rl_producer *)0)->name) }

static const struct {
	const char *name;
	size_t offset;
	size_t size;
} fields[] = {
	FIELD(magic), FIELD(version_major), FIELD(version_minor), FIELD(header_size),
	FIELD(capacity), FIELD(max_record), FIELD(created_ns), FIELD(tail), FIELD(head_cache),
	FIELD(head), FIELD(release_to), FIELD(dropped_records), FIELD(dropped_bytes),
	FIELD(unblocked_records), FIELD(invalid_records), FIELD(futex_word), FIELD(sleeping),
	FIELD(consumer_heartbeat_ns), FIELD(consumer_pid), FIELD(producers_ever), FIELD(producers),
	SLOT_FIELD(state), SLOT_FIELD(pid), SLOT_FIELD(heartbeat_ns),
};

int
main(void)
{
	printf("{\"header_page_size\": %u, \"line\": %u, \"record_header\": %u, \"align\": %u,\n",
	    GB_RL_HEADER_SIZE, GB_RL_LINE, GB_RL_REC_HEADER, GB_RL_ALIGN);
	printf(" \"producer_slots\": %u, \"producer_slot_size\": %zu, \"header_struct_size\": %zu",
	    GB_RL_PRODUCERS, sizeof(gb_rl_producer), sizeof(gb_rl_header));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		printf(",\n \"%s\": %zu, \"%s_size\": %zu", fields[i].name, fields[i].offset,
		    fields[i].name, fields[i].size);
	printf("}\n");
	return ferror(stdout) || fflush(stdout) != 0 ? 1 : 0;
}
