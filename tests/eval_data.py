"""The Cyrillic and Greek evaluation set (``tests/data/cyrillic_greek_eval.jsonl``): loading it.

Written for this project separately from the seed corpus and never trained on: it measures
how the default model treats ordinary Russian, Ukrainian and Greek comments, and spam in
those languages. ``test_seed_corpus`` keeps it apart from the seed rows.
"""
from __future__ import annotations

import json
from pathlib import Path

from model.comment import Comment

EVAL_SET = Path(__file__).resolve().parent / "data" / "cyrillic_greek_eval.jsonl"

#: The Akismet fields a row may carry besides its text (``label`` and ``lang`` are not read by the model).
_FIELDS = ("comment_author", "comment_author_email", "comment_author_url", "comment_type")


def eval_rows() -> list[dict]:
    """Every row of the evaluation set, as written."""
    with EVAL_SET.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def as_comment(row: dict) -> Comment:
    """The comment a row describes, with whichever metadata it has."""
    return Comment(comment_content=row["comment_content"], **{k: row[k] for k in _FIELDS if k in row})
