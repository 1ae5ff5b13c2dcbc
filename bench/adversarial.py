"""Time to score bodies built to make the text patterns backtrack, at 16 and 64 KiB; prints JSON.

A comment is attacker-controlled text, and scoring it runs regular expressions
over it. A pattern that scans on past where its match can end, then tries
again from the next character, costs time quadratic in the text's length:
before model/normalize.py was fixed, a 60 KB body of ``"a."`` repeated took 110
seconds to score, ``"<a "`` repeated 20 s and ``"[url="`` repeated 10 s, each
holding a worker (and its scorer lock) that long. Each body here is one such
shape; the bench scores each at 16 KiB and at 64 KiB (the default body limit)
and prints milliseconds and their ratio: about 4 for linear time, about 16 for
quadratic. ``tests/test_normalize.py`` scores them all under a timeout.

    python bench/adversarial.py [--model DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def repeated(piece: str) -> Callable[[int], str]:
    """A body of ``piece`` repeated to about ``size`` characters."""
    return lambda size: piece * max(1, size // len(piece))


#: The shapes that were quadratic (first group) and the nearby ones checked with them.
BODIES: dict[str, Callable[[int], str]] = {
    "dotted labels without a TLD ('a.a.a...')": repeated("a."),
    "dotted labels with digits and hyphens": repeated("1.a-"),
    "'[dot]' runs that deobfuscate into one long host": repeated("example [dot] "),
    "unclosed anchors ('<a <a ...')": repeated("<a "),
    "unclosed BBCode links ('[url=[url=...')": repeated("[url="),
    "a run of spaces before '['": lambda size: " " * size + "[",
    "'[' before a run of spaces": lambda size: "[" + " " * size,
    "'the' and a run of spaces before 'dot com'": lambda size: "the" + " " * size + "dot com",
    "one long word": repeated("a"),
    # Every character n-gram a new one: the most vocabulary lookups per byte (and, before long
    # words were left out of the per-word caches, the most memory per request).
    "one long word of random letters": lambda size: "".join(random.Random(7).choices(string.ascii_lowercase, k=size)),
    "e-mail-like pieces": repeated("a@b."),
    "obfuscated schemes": repeated("hxxp://a"),
    "ordinary spam, repeated": repeated("Check out http://bit.ly/x FREE $$$ call 555-0100 now!!! "),
    # The disguise and filler rules (model.disguises, the repeated-words pattern).
    "e-mail addresses after a link": lambda size: "http://x.example/" + "a@b.co," * (size // 7),
    "filler words ('the the ...')": repeated("the "),
    "filler phrases, each a letter longer": lambda size: " ".join(
        "ab" + "c" * (i % 50) for i in range(size // 30)),
    "letters spelt out ('c a s i n o ...')": repeated("c a s i n o "),
    "look-alikes in every word": repeated("саsinо "),
    "stacked combining marks": repeated("a\u0336\u0334\u0335 "),
    "quoted BBCode links, unclosed": repeated('[url="'),
    "an anchor's href followed by spaces": lambda size: "<a href=" + " " * size + ">",
    "dotted capitals ('1.A.1.A...')": repeated("1.A."),
    "one long word of letters and digits ('a1a1...')": repeated("a1"),
    "stand-ins in every word ('v1agra c@sino ...')": repeated("v1agra c@sino fr33 "),
    "one long word of accented letters": repeated("é"),
    "accented words ('vïágra ...')": repeated("vïágra cásïno "),
    "symbols between letters ('a!a|a$...')": repeated("a!a|a$"),
}


def time_bodies(scorer: Any, size: int) -> dict[str, float]:
    """Milliseconds to score each body of about ``size`` characters (best of two)."""
    from model.comment import Comment

    out = {}
    for name, make in BODIES.items():
        comment = Comment(comment_content=make(size))
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            scorer.score(comment)
            best = min(best, time.perf_counter() - start)
        out[name] = round(best * 1000, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an existing model artifact (default: train one once)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from host import machine_reference_ms
    from http_load import ensure_model
    from model.artifact import load_model

    scorer = load_model(ensure_model(args.model))
    small, large = time_bodies(scorer, 16 * 1024), time_bodies(scorer, 64 * 1024)
    result = {"machine_reference_ms": machine_reference_ms(), "bodies": {
        name: {"ms_16kib": small[name], "ms_64kib": large[name],
               "ratio": round(large[name] / small[name], 1) if small[name] else None}
        for name in BODIES}}
    result["slowest_64kib_ms"] = max(large.values())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
