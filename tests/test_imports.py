"""The one-way import arrows: service -> model <- training, store below both, commentguard wires them.

Every ``.py`` file of each package is parsed with ``ast`` (nothing is imported),
and every import of a project package, at module level or inside a function,
is checked against what that package may import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("model", "training", "service", "store", "commentguard")

#: What each package may import of ours (itself always allowed), and third-party roots it must not.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "store": {"model"},
    "training": {"model", "store"},
    "service": {"model", "store"},
    "commentguard": {"model", "store", "training", "service"},
}
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "model": {"flask", "click", "werkzeug"},
    "store": {"flask", "click"},
    "training": {"flask"},
}


def imported_roots(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (name in ("import_module", "__import__") and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def package_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)


def violations(package: str) -> list[str]:
    allowed = ALLOWED[package] | {package}
    banned = FORBIDDEN_THIRD_PARTY.get(package, set())
    out = []
    for path in package_files(package):
        for line, root in imported_roots(path):
            if (root in PROJECT and root not in allowed) or root in banned:
                out.append(f"{path.relative_to(ROOT)}:{line}: {package} imports {root}")
    return out


@pytest.mark.parametrize("package", PROJECT)
def test_package_imports_follow_the_arrows(package: str) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    assert package_files(package), f"no .py files under {package}/"
    bad = violations(package)
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os\n\ndef f():\n    from training.train import train_model\n"
                      "    import importlib\n    importlib.import_module('service.app')\n")
    roots = imported_roots(sample)
    assert (4, "training") in roots and (6, "service") in roots and (1, "os") in roots
