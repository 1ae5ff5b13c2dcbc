"""Threads share one Scorer: one comment is scored at a time, and each gets its own verdict."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from model.comment import Comment
from model.scorer import Scorer

TEXTS = [f"comment number {i}: check out my channel http://bit.ly/x{i}" if i % 2 else
         f"comment number {i}: thanks, the second example fixed my build" for i in range(40)]


def test_concurrent_verdicts_equal_serial_ones(scorer: Scorer) -> None:
    comments = [Comment(comment_content=t) for t in TEXTS]
    serial = [scorer.score(c) for c in comments]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(scorer.score, comments))
    assert threaded == serial


def test_one_comment_is_scored_at_a_time(scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    inside, most = 0, 0
    count_lock = threading.Lock()
    prepare = scorer.compiled.prepare

    def slow_prepare(item: Any) -> Any:
        nonlocal inside, most
        with count_lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.005)  # gives the GIL away, as numpy does: another thread could step in here
        with count_lock:
            inside -= 1
        return prepare(item)

    monkeypatch.setattr(scorer.compiled, "prepare", slow_prepare)
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda t: scorer.score_many([Comment(comment_content=t)] * 2), TEXTS[:12]))
    assert most == 1
    assert all(len(b) == 2 for b in batches)
