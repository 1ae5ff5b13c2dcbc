"""A large labelled corpus for the training benchmarks, made from the project's own seed corpus.

Every row starts from seed comments (``training/seed/*.jsonl``) of one label and
one family, and is recombined and perturbed: sentences from up to three
comments of the same family, adjacent-word swaps, casing, punctuation, emoji,
typos, changed numbers, changed link hosts and TLDs, and metadata (author,
e-mail, author URL, comment type) taken from another comment of the same label.
The result is mostly unique rows that look like the seed corpus, so a model
trained on it is exercised at scale; it is *not* a measure of real-world
accuracy (rows are near-duplicates of each other by construction). Never made
from ``../shared/data``. Deterministic for a given ``--seed``.

Usage: python bench/make_corpus.py [--rows 1000000] [--out /tmp/commentguard-corpus-1000000.jsonl] [--seed 0]
A ``.csv`` suffix writes CSV with a header; anything else writes JSON Lines.
Prints JSON: rows, duplicate share (same text after the loaders' duplicate key), seconds.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT / "training" / "seed"
META_FIELDS = ("comment_author", "comment_author_email", "comment_author_url", "comment_type")
FIELDS = ("comment_content", "label", *META_FIELDS)

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_URL_HOST = re.compile(r"(https?://)([A-Za-z0-9.-]+)")
_DIGITS = re.compile(r"\d+")
_SHORTENERS = {"bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "cutt.ly", "rb.gy", "t.me"}
_SPAM_TLDS = ("com", "net", "org", "info", "xyz", "top", "biz", "online", "site", "club", "shop")
_EMOJI = ("🙂", "😂", "👍", "🔥", "❤️", "🙏", "👏", "😍", "💯", "🤔", "✨", "🎉", "💰", "🚀", "✅")
_PUNCT_TAILS = ("", "!", "!!", "!!!", ".", "...", "?", " :)", " :D")


def load_seed(seed_dir: Path = SEED_DIR) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Seed rows grouped by (label, family)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(seed_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                groups[(row["label"], row.get("family", "other"))].append(row)
    return dict(groups)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1:]  # drop a letter
    if kind == 1:
        return word[:i] + word[i] + word[i:]  # double a letter
    return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]  # swap two letters


def _perturb_words(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for _ in range(rng.randrange(3)):
        if len(words) > 3:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    for _ in range(rng.randrange(3)):
        i = rng.randrange(len(words))
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def _new_host(host: str, label: str, rng: random.Random) -> str:
    if host.lower() in _SHORTENERS or label == "ham":
        return host
    name, _, tld = host.rpartition(".")
    if not name:
        return host
    tld = rng.choice(_SPAM_TLDS) if rng.random() < 0.5 else tld
    return f"{name}{rng.choice(('', '-', ''))}{rng.randrange(1, 999)}.{tld}"


def _new_link_path(match: re.Match[str], label: str, rng: random.Random) -> str:
    return match.group(1) + _new_host(match.group(2), label, rng)


def _casing(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.04:
        return text.upper()
    if roll < 0.08:
        return text.lower()
    if roll < 0.10:
        return text.title()
    return text


def make_row(groups: dict[tuple[str, str], list[dict[str, Any]]], keys: list[tuple[str, str]],
             rng: random.Random) -> dict[str, str]:
    """One recombined, perturbed row of a random (label, family) group."""
    label, family = key = keys[rng.randrange(len(keys))]
    pool = groups[key]
    base = pool[rng.randrange(len(pool))]
    sentences = _SENTENCE.split(base["comment_content"])
    for _ in range(rng.choice((0, 0, 1, 1, 2))):  # borrow sentences from comments of the same family
        other = _SENTENCE.split(pool[rng.randrange(len(pool))]["comment_content"])
        sentences.insert(rng.randrange(len(sentences) + 1), other[rng.randrange(len(other))])
    if len(sentences) > 2 and rng.random() < 0.3:
        del sentences[rng.randrange(len(sentences))]
    text = " ".join(s for s in sentences if s)
    text = _perturb_words(text, rng)
    text = _DIGITS.sub(lambda m: str(rng.randrange(10 ** len(m.group()))) if rng.random() < 0.5 else m.group(), text)
    text = _URL_HOST.sub(lambda m: _new_link_path(m, label, rng), text)
    text = _casing(text, rng).rstrip()
    text += rng.choice(_PUNCT_TAILS)
    if rng.random() < 0.2:
        text += " " + "".join(rng.choice(_EMOJI) for _ in range(rng.randrange(1, 4)))
    row = {"comment_content": text, "label": label}
    donor = base if rng.random() < 0.6 else groups[keys[rng.randrange(len(keys))]][0]
    if donor["label"] != label:  # metadata only from a comment of the same label
        donor = base
    for name in META_FIELDS:
        value = donor.get(name, "")
        if name == "comment_author_url" and value:
            value = _URL_HOST.sub(lambda m: _new_link_path(m, label, rng), value)
        if name == "comment_author" and value and rng.random() < 0.3:
            value = f"{value}{rng.randrange(100)}"
        row[name] = value
    return row


def generate_rows(n: int, seed: int = 0, seed_dir: Path = SEED_DIR) -> Iterator[dict[str, str]]:
    """``n`` generated rows (dicts in the generic training format), deterministic for ``seed``."""
    groups = load_seed(seed_dir)
    keys = sorted(groups)
    # Weight groups by their size, so label and family shares follow the seed corpus.
    weighted = [key for key in keys for _ in groups[key]]
    rng = random.Random(seed)
    for _ in range(n):
        yield make_row(groups, weighted, rng)


def write_corpus(path: Path, n: int, seed: int = 0) -> dict[str, Any]:
    """Write ``n`` rows to ``path`` (CSV for a .csv suffix, else JSONL); return rows and duplicate share."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    duplicates = 0
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS) if path.suffix == ".csv" else None
        if writer:
            writer.writeheader()
        for row in generate_rows(n, seed):
            key = row["comment_content"].strip().lower().encode("utf-8")
            digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
            if digest in seen:
                duplicates += 1
            seen.add(digest)
            if writer:
                writer.writerow(row)
            else:
                handle.write(json.dumps({k: v for k, v in row.items() if v}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return {"path": str(path), "rows": n, "duplicate_share": round(duplicates / max(n, 1), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out or Path(f"/tmp/commentguard-corpus-{args.rows}.jsonl")
    if ROOT in out.resolve().parents:
        parser.error("write the corpus outside the repository (e.g. under /tmp)")
    started = time.monotonic()
    report = write_corpus(out, args.rows, args.seed)
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
