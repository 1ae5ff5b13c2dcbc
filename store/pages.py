"""The page a comment is on: its permalink without the ``#fragment`` and a trailing slash, its
ASCII letters in lower case, so that the forms one page is written in (``/Roses/``, ``/roses``,
``/roses/#comment-12``) are one page. The sender history counts a comment per page, and a report by
fields is linked to the check on its page, both by this form: in SQL (:data:`PAGE_SQL`, per
backend) and in Python (:func:`page_of`), which give the same string.
"""
from __future__ import annotations

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: ``permalink``'s page, by backend. SQLite's lower() folds ASCII letters only; PostgreSQL's
#: would fold others too (by the database's locale), so it folds with translate(): both backends,
#: and :func:`page_of`, agree on every string.
PAGE_SQL = {
    "sqlite": "lower(rtrim(CASE WHEN instr(permalink, '#') > 0 THEN substr(permalink, 1, instr(permalink, '#') - 1)"
              " ELSE permalink END, '/'))",
    "postgresql": "translate(rtrim(split_part(permalink, '#', 1), '/'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', "
                  "'abcdefghijklmnopqrstuvwxyz')",
}


def page_of(permalink: str) -> str:
    """The page of a permalink, as :data:`PAGE_SQL` computes it."""
    return permalink.split("#", 1)[0].rstrip("/").translate(_ASCII_LOWER)


__all__ = ["PAGE_SQL", "page_of"]
