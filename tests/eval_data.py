"""The evaluation sets in ``tests/data/``: loading them.

Written for this project separately from the seed corpus and never trained on, they measure
how the default model treats ordinary comments and spam in languages the seed corpus covers
thinly: ``cyrillic_greek_eval.jsonl`` (Russian, Ukrainian, Greek) and ``world_eval.jsonl``
(Chinese, Japanese, Korean, Thai, Persian, Hebrew, Hindi, Arabic, Indonesian, Vietnamese,
Turkish, Bengali, Swahili), and how it treats ordinary comments on sites whose topic is spam's
topic: ``topic_eval.jsonl`` (health, money, betting, crypto, sex education, SEO, essays, phone
repair, dating and video creators' sites, each row with a ``topic``). ``test_seed_corpus`` keeps
them apart from the seed rows.
"""
from __future__ import annotations

import json
from pathlib import Path

from model.comment import Comment

DATA = Path(__file__).resolve().parent / "data"
EVAL_SET = DATA / "cyrillic_greek_eval.jsonl"
WORLD_EVAL_SET = DATA / "world_eval.jsonl"
TOPIC_EVAL_SET = DATA / "topic_eval.jsonl"
EVAL_SETS = (EVAL_SET, WORLD_EVAL_SET, TOPIC_EVAL_SET)

#: The Akismet fields a row may carry besides its text (``label``, ``lang`` and ``topic`` are not read by the model).
_FIELDS = ("comment_author", "comment_author_email", "comment_author_url", "comment_type")


def eval_rows(path: Path = EVAL_SET) -> list[dict]:
    """Every row of an evaluation set (the Cyrillic and Greek one unless told), as written."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def as_comment(row: dict) -> Comment:
    """The comment a row describes, with whichever metadata it has."""
    return Comment(comment_content=row["comment_content"], **{k: row[k] for k in _FIELDS if k in row})
