"""Ids: uuid4 and uuid7 hex, no repeats within a process, none shared with a forked worker, uuid7 in time order."""
from __future__ import annotations

import os
import re
import time
import uuid

import pytest

from store.ids import BATCH, random_id, time_ordered_id

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_ids_are_32_hex_and_never_repeat_across_batches() -> None:
    ids = [random_id() for _ in range(BATCH * 5 + 3)]
    assert all(HEX32.fullmatch(i) and uuid.UUID(hex=i).version == 4 for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (gunicorn's worker model)")
def test_a_forked_child_does_not_reuse_the_parents_batch() -> None:
    random_id()  # the parent now holds a partly used batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.close(read)
        os.write(write, ",".join(random_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {random_id() for _ in range(BATCH)}
    assert len(child) == 10 and not child & parent


def test_time_ordered_ids_are_uuid7_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [time_ordered_id() for _ in range(BATCH * 3 + 1)]
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(hex=i) for i in ids]
    assert all(HEX32.fullmatch(i) for i in ids)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert all(before <= int(i[:12], 16) <= after for i in ids)
    assert len(set(ids)) == len(ids)


def test_time_ordered_ids_sort_by_the_millisecond_they_were_made_in() -> None:
    first = [time_ordered_id() for _ in range(50)]
    time.sleep(0.003)
    second = [time_ordered_id() for _ in range(50)]
    assert max(first) < min(second)
