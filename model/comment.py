"""The comment record: one comment with the Akismet field names.

Every surface speaks this record: the JSON API, the Akismet API, the training
files and the feedback store. Fields are plain strings (empty when absent), so
feature extraction never has to special-case ``None``.
"""
from __future__ import annotations

import json

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from model.errors import CommentFieldError

#: The text fields of the record, in the order the Akismet documentation lists them.
TEXT_FIELDS: tuple[str, ...] = (
    "blog",
    "user_ip",
    "user_agent",
    "referrer",
    "permalink",
    "comment_type",
    "comment_author",
    "comment_author_email",
    "comment_author_url",
    "comment_content",
    "comment_date_gmt",
    "comment_post_modified_gmt",
    "comment_parent",
    "blog_lang",
    "blog_charset",
    "user_role",
    "is_test",
    "recheck_reason",
    "honeypot_field_name",
    "callback",
)

#: Akismet fields a comment may also carry as ``comment_content`` synonyms in training files.
CONTENT_ALIASES: tuple[str, ...] = ("comment_content", "content")


@dataclass(frozen=True)
class Comment:
    """One comment, as a blog platform describes it to an Akismet-style service."""

    comment_content: str = ""
    comment_author: str = ""
    comment_author_email: str = ""
    comment_author_url: str = ""
    comment_type: str = ""
    blog: str = ""
    user_ip: str = ""
    user_agent: str = ""
    referrer: str = ""
    permalink: str = ""
    comment_date_gmt: str = ""
    comment_post_modified_gmt: str = ""
    comment_parent: str = ""
    blog_lang: str = ""
    blog_charset: str = ""
    user_role: str = ""
    is_test: str = ""
    recheck_reason: str = ""
    honeypot_field_name: str = ""
    callback: str = ""
    #: The post's tags and categories (Akismet ``comment_context`` / ``comment_context[]``).
    comment_context: tuple[str, ...] = ()
    #: Everything else the client sent (``HTTP_*``, ``POST_*``, the honeypot value...).
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, keep_unknown: bool = True) -> "Comment":
        """Build a record from a JSON object or form, checking each field's type.

        Raises :class:`CommentFieldError` naming the first field whose value is not
        a string (numbers are accepted for ``comment_parent``). Unknown fields are
        kept in ``extra`` when ``keep_unknown`` is set, other values than strings as
        their JSON text.
        """
        values: dict[str, Any] = {}
        extra: dict[str, str] = {}
        content_key = next((k for k in CONTENT_ALIASES if k in data), None)
        for key, value in data.items():
            if key == "content" and content_key == "content":
                key = "comment_content"
            if key in _TEXT_SET:
                values[key] = _as_text(key, value)
            elif key == "comment_context":
                values[key] = _as_context(value)
            elif key == "extra":
                if not isinstance(value, Mapping):
                    if value is None:
                        continue
                    raise CommentFieldError("extra", "field 'extra' must be an object of strings")
                extra.update({str(k): _as_text(f"extra.{k}", v) for k, v in value.items()})
            elif keep_unknown and value is not None:
                # Kept as JSON text ("true", '["a", "b"]'), not Python's repr ("True").
                extra[str(key)] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return cls(**values, extra=extra)

    def to_dict(self, *, include_empty: bool = False) -> dict[str, Any]:
        """The record as a JSON-ready dict (empty fields left out unless asked for)."""
        out = asdict(self)
        out["comment_context"] = list(self.comment_context)
        out["extra"] = dict(self.extra)
        if include_empty:
            return out
        return {k: v for k, v in out.items() if v not in ("", [], {})}

    @property
    def is_test_call(self) -> bool:
        """True when the client marked the call as a test that must not be learned from."""
        return self.is_test.strip().lower() not in ("", "0", "false", "no")

    @property
    def honeypot_value(self) -> str:
        """The value sent in the field named by ``honeypot_field_name`` (empty if none).

        The name may be one of the record's own fields (a form whose hidden trap is called
        ``comment_author_url``): its value is then that field's, or the context joined.
        """
        name = self.honeypot_field_name.strip()
        if not name or name == "honeypot_field_name":
            return ""
        if name in _HONEYPOT_FIELDS:
            return str(getattr(self, name))
        if name == "comment_context":
            return " ".join(self.comment_context)
        return self.extra.get(name, "")


_TEXT_SET = frozenset(TEXT_FIELDS)
#: The record's fields a honeypot may be named after (not the field that names the honeypot).
_HONEYPOT_FIELDS = _TEXT_SET - {"honeypot_field_name"}
#: The fields a number is accepted in as well as a string, and what each accepts (for the error).
#: A boolean is an integer to Python, and ``is_test: true`` is how JSON clients mark a test.
_NUMBER_OK = {"comment_parent": "a string or an integer", "is_test": "a string, an integer or a boolean"}
# (comment_parent takes true/false too, as 1/0, as the OpenAPI document allows; the message names
# what a client should send.)
#: A value's JSON type, as an error names it ("not float" was Python's name, not the client's).
_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "an integer", float: "a decimal number", list: "an array",
               tuple: "an array", dict: "an object"}


def as_comment(item: Any) -> Comment:
    """A :class:`Comment` from a Comment, a mapping with Akismet field names, or a bare text."""
    if isinstance(item, Comment):
        return item
    if isinstance(item, Mapping):
        return Comment.from_mapping(item)
    if isinstance(item, str):
        return Comment(comment_content=item)
    raise TypeError(f"cannot score a {type(item).__name__}; pass a Comment or a dict")


def _as_text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if key in _NUMBER_OK and isinstance(value, (int, bool)) and not isinstance(value, float):
        return str(int(value))
    accepted = _NUMBER_OK.get(key, "a string")
    raise CommentFieldError(key, f"field '{key}' must be {accepted}, not {_json_type(value)}")


def _as_context(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if isinstance(value, (list, tuple)):
        got = "an array holding " + next(_json_type(v) for v in value if not isinstance(v, str))
    else:
        got = _json_type(value)
    raise CommentFieldError("comment_context",
                            f"field 'comment_context' must be a string or an array of strings, not {got}")


def _json_type(value: Any) -> str:
    """A value's JSON type as an error names it."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def field_names() -> list[str]:
    """All field names of the record, for documentation and schema generation."""
    return [f.name for f in fields(Comment)]
