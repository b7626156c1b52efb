"""ring_layout.py - the byte layout of a ring segment's header page, as common/ring_layout.h
says it: read from the ring-offsets tool (tests/tools/ring_offsets.c), whose path ctest passes
in GBATCH_RING_OFFSETS beside the other binaries. No offset is typed here.

    from ring_layout import LAYOUT
    LAYOUT["head"], LAYOUT["consumer_pid"], LAYOUT["header_page_size"], LAYOUT["line"], ...
"""
import json
import os
import subprocess

RING_OFFSETS = os.environ.get("GBATCH_RING_OFFSETS", "")


def load(tool=RING_OFFSETS):
    """The layout as a dict: field offsets by name, "<field>_size" their sizes, and the
    constants header_page_size (GB_RL_HEADER_SIZE), line, record_header, align, producer_slots,
    producer_slot_size. A name printed twice is an error."""
    if not tool:
        raise RuntimeError("GBATCH_RING_OFFSETS (the ring-offsets tool) is not set")
    out = subprocess.run([tool], check=True, capture_output=True, timeout=30).stdout

    def pairs(items):
        d = dict(items)
        if len(d) != len(items):
            raise ValueError("ring-offsets printed a name twice: %s" % sorted(k for k, _ in items))
        return d
    return json.loads(out, object_pairs_hook=pairs)


LAYOUT = load()
