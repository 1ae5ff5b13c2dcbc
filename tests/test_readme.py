"""The README's promises that code can check: the two opening commands and the CI script."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_readme_opens_with_serve_and_test_commands() -> None:
    blocks = _sh_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    serve, test = blocks[0], blocks[1]
    assert serve.endswith("commentguard serve") and "pip install -e ." in serve
    assert "pip install -e '.[test]'" in test and test.endswith("python -m pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _sh_blocks((REPO / "README.md").read_text(encoding="utf-8"))[1]
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in [line.strip() for line in ci_lines]
