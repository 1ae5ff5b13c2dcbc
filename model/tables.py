"""The serving tables: a model's fast-path numbers in one ``.npz`` file, read without pickle or scikit-learn.

An artifact carries them beside its pickle (:mod:`model.artifact`). The service
scores from them alone, so it neither unpickles anything nor imports
scikit-learn and SciPy: a worker starts about a second sooner and uses less
memory. The pickle stays the artifact's reference, for evaluating, retraining
and the tests that compare the fast path with ``predict_proba``.

The file is a NumPy ``.npz`` archive read with ``allow_pickle=False``: a JSON
header (format, intercept, each block's options, the words the reasons leave
out) and plain arrays (each block's terms as one UTF-8 string with their end
offsets, its idf and weighted coefficients). Its SHA-256 is in the artifact's
metadata and is checked before it is read.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from model.errors import ArtifactCorruptError, ArtifactIncompatibleError, FastPathUnsupportedError
from model.fastpath import (
    SUPPORTED_ACCENTS,
    SUPPORTED_ANALYZERS,
    SUPPORTED_NORMS,
    MetaBlockSpec,
    ModelSpec,
    TextBlockSpec,
    column_terms,
)

TABLES_NAME = "scoring.npz"
TABLES_FORMAT = 1
_HEADER = "header"
_TEXT_OPTIONS = ("analyzer", "min_n", "max_n", "lowercase", "strip_accents", "binary", "sublinear", "norm",
                 "use_idf", "token_pattern")


def tables_bytes(spec: ModelSpec, quiet_words: Iterable[str]) -> bytes:
    """The serving tables of ``spec`` as the bytes of an ``.npz`` file.

    Raises :class:`FastPathUnsupportedError` for what the file cannot hold (an
    accent-stripping function of the caller's own); such a model is served from its pickle.
    """
    arrays: dict[str, np.ndarray] = {}
    blocks: list[dict[str, Any]] = []
    for i, block in enumerate(spec.blocks):
        terms = column_terms(block.vocab)
        arrays[f"b{i}_terms"] = np.frombuffer("".join(terms).encode("utf-8"), dtype=np.uint8)
        # Ends in characters (not bytes): the joined text is decoded once and sliced.
        arrays[f"b{i}_ends"] = np.cumsum([len(t) for t in terms], dtype=np.int64)
        arrays[f"b{i}_weighted"] = np.ascontiguousarray(block.weighted, dtype=np.float64)
        entry: dict[str, Any] = {"name": block.name, "offset": block.offset}
        if isinstance(block, TextBlockSpec):
            if callable(block.strip_accents):
                raise FastPathUnsupportedError(
                    f"block {block.name!r}: an accent-stripping function cannot be stored in the serving tables")
            entry["kind"] = "text"
            entry.update({option: getattr(block, option) for option in _TEXT_OPTIONS})
            entry["stop_words"] = None if block.stop_words is None else sorted(block.stop_words)
            arrays[f"b{i}_idf"] = np.ascontiguousarray(block.idf, dtype=np.float64)
        else:
            entry["kind"] = "meta"
        blocks.append(entry)
    header = {"format": TABLES_FORMAT, "intercept": spec.intercept, "blocks": blocks,
              "quiet_words": sorted(set(quiet_words))}
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)  # stored, not compressed: it loads in milliseconds
    return out.getvalue()


def read_tables(path: str | Path) -> tuple[ModelSpec, frozenset[str]]:
    """The model and the reasons' quiet words stored at ``path`` (checked against its hash by the caller)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(bytes(archive[_HEADER]).decode("utf-8"))
            if header.get("format") != TABLES_FORMAT:
                raise ArtifactIncompatibleError(
                    f"serving tables format {header.get('format')!r} at {path}; this release reads {TABLES_FORMAT}")
            blocks = tuple(_block(archive, i, entry) for i, entry in enumerate(header["blocks"]))
            offset = 0
            for block in blocks:  # the columns of the blocks follow one another, as the pipeline's
                if block.offset != offset:
                    raise ValueError(f"block {block.name!r} starts at column {block.offset}, not {offset}")
                offset += len(block.vocab)
            spec = ModelSpec(intercept=float(header["intercept"]), blocks=blocks)
            quiet = frozenset(header["quiet_words"])
    except ArtifactIncompatibleError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ArtifactCorruptError(f"the serving tables at {path} are not readable: {exc}") from exc
    return spec, quiet


def _block(archive: Any, i: int, entry: dict[str, Any]) -> TextBlockSpec | MetaBlockSpec:
    text = bytes(archive[f"b{i}_terms"]).decode("utf-8")
    ends = archive[f"b{i}_ends"].tolist()
    starts = [0] + ends[:-1]
    vocab = {text[a:b]: column for column, (a, b) in enumerate(zip(starts, ends))}
    weighted = archive[f"b{i}_weighted"]
    if len(vocab) != len(ends) or weighted.shape != (len(ends),):
        raise ValueError(f"block {entry['name']!r}: terms and weights do not line up")
    if entry["kind"] == "meta":
        return MetaBlockSpec(name=entry["name"], offset=int(entry["offset"]), vocab=vocab, weighted=weighted)
    idf = archive[f"b{i}_idf"]
    if idf.shape != weighted.shape:
        raise ValueError(f"block {entry['name']!r}: idf and weights do not line up")
    _check_text_options(entry)
    stop = entry.get("stop_words")
    return TextBlockSpec(
        name=entry["name"], offset=int(entry["offset"]), vocab=vocab, idf=idf, weighted=weighted,
        stop_words=None if stop is None else frozenset(stop),
        **{option: entry[option] for option in _TEXT_OPTIONS})


def _check_text_options(entry: dict[str, Any]) -> None:
    """The options a text block's scorer reproduces (what compile_pipeline accepts), or ValueError."""
    where = f"block {entry['name']!r}"
    if entry["analyzer"] not in SUPPORTED_ANALYZERS:
        raise ValueError(f"{where}: unknown analyzer {entry['analyzer']!r}")
    if entry["norm"] not in SUPPORTED_NORMS or entry["strip_accents"] not in SUPPORTED_ACCENTS:
        raise ValueError(f"{where}: unknown norm or strip_accents")
    min_n, max_n = entry["min_n"], entry["max_n"]
    if not (isinstance(min_n, int) and isinstance(max_n, int) and 1 <= min_n <= max_n):
        raise ValueError(f"{where}: bad n-gram range")
    if entry["analyzer"] == "word" and not isinstance(entry["token_pattern"], str):
        raise ValueError(f"{where}: a word block needs its token pattern")


__all__ = ["TABLES_FORMAT", "TABLES_NAME", "read_tables", "tables_bytes"]
