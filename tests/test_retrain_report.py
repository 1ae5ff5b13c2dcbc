"""The retrain report page, rendered from a small hand-made result (no training needed)."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from model.comment import Comment
from model.verdict import Thresholds
from training import report
from training.metrics import evaluate_scores
from training.records import LabeledComment
from training.retrain import Gate, RetrainResult

THRESHOLDS = Thresholds(0.3, 0.6, 0.95)


def _rows(texts_labels: list[tuple[str, int]]) -> list[LabeledComment]:
    return [LabeledComment(Comment(comment_content=t), y, "test", i + 1) for i, (t, y) in enumerate(texts_labels)]


@pytest.fixture()
def result() -> RetrainResult:
    held = _rows([("thanks, that fixed it", 0), ("how do I set the timeout?", 0),
                  ("cheap pills bit.ly/x", 1), ("win cash now", 1)])
    feedback = _rows([("<script>alert(1)</script> buy followers", 1), ("nice post", 0)])
    cand, cur = np.array([0.1, 0.2, 0.9, 0.8]), np.array([0.2, 0.7, 0.9, 0.4])
    labels = [r.label for r in held]
    return RetrainResult(
        version="v-candidate", path=Path("/nonexistent"), promoted=True, forced=False,
        decision="ham flagged 0.000 vs 0.500: ok; spam caught 1.000 vs 0.500: ok", gate=Gate(),
        candidate_eval=evaluate_scores(labels, cand, THRESHOLDS),
        current_eval=evaluate_scores(labels, cur, THRESHOLDS), current_version="v-current",
        metadata={"training": {"rows": 40, "spam": 20}}, held_out=held, candidate_scores=cand,
        current_scores=cur, feedback=feedback, feedback_held_out=1,
        feedback_candidate_scores=np.array([0.97, 0.1]), feedback_current_scores=np.array([0.2, 0.1]),
        feedback_current_right=[False, True],
    )


def test_report_shows_both_models_the_decision_and_escapes_comment_text(result: RetrainResult) -> None:
    page = report.render_report(result)
    assert "v-candidate" in page and "v-current" in page and "Promoted" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "1 of 2 labels disagree" in page
    assert page.count("<h3>") == 2  # a confusion matrix per model


def test_report_embeds_charts_when_matplotlib_is_there(result: RetrainResult) -> None:
    assert report.charts_available()  # matplotlib comes with the `test` extra
    page = report.render_report(result)
    assert page.count("data:image/png;base64,") == 2


def test_report_without_matplotlib_still_renders(result: RetrainResult,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "charts_available", lambda: False)
    page = report.render_report(result)
    assert "data:image/png" not in page and "commentguard[report]" in page
    assert "Confusion matrices" in page


def test_a_refitted_promotion_names_the_candidate_the_figures_are_of(result: RetrainResult) -> None:
    """The report's figures are the gate's candidate's, which the refit replaced: say so."""
    result.metadata["training"]["refit_after_gate"] = {"candidate_version": "v-gate", "held_out_rows": 4}
    page = report.render_report(result)
    assert "<code>v-gate</code>, trained without the 4 held-out comments" in page
    assert "<code>v-candidate</code> is the same recipe refitted on all comments" in page


def test_the_summary_gives_no_spam_caught_figure_over_held_out_feedback_without_spam(
        capsys: pytest.CaptureFixture[str]) -> None:
    """'spam caught 0.000 (current 0.000)' was printed for held-out feedback holding no spam at all."""
    from types import SimpleNamespace

    from commentguard.commands.retrain import print_summary

    result = SimpleNamespace(forced=False, promoted=True, version="v2", current_version="v1", decision="ok")
    ham_only = {"n": 1, "spam": 0, "recall": 0.0, "false_positive_rate": 0.0}
    print_summary(result, {"recent_feedback": {"held_out": 1, "candidate": ham_only, "current": ham_only}},  # type: ignore[arg-type]
                  Path("report.html"))
    out = capsys.readouterr().out
    assert "spam caught" not in out and "no spam among it" in out and "ham flagged 0.000" in out
    both = {"n": 4, "spam": 2, "recall": 0.5, "false_positive_rate": 0.0}
    print_summary(result, {"recent_feedback": {"held_out": 4, "candidate": both, "current": both}},  # type: ignore[arg-type]
                  Path("report.html"))
    assert "spam caught 0.500 (current 0.500)" in capsys.readouterr().out


def test_the_report_is_its_owners_only_and_the_artifact_beside_it_stays_shared(
        result: RetrainResult, tmp_path: Path) -> None:
    """It lists moderator-labelled comments and was written 0644: readable by every user when
    COMMENTGUARD_MODELS_DIR lies outside the owner-only data directory."""
    import dataclasses
    import os
    import stat

    candidate = tmp_path / "models" / "v-candidate"
    candidate.mkdir(parents=True, mode=0o755)
    candidate.chmod(0o755)  # as retrain leaves it: the service's user reads the artifact in it
    (candidate / "metadata.json").write_text("{}")
    (candidate / "metadata.json").chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        written = report.write_report(dataclasses.replace(result, path=candidate))
        assert written == candidate / report.REPORT_NAME
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        elsewhere = tmp_path / "old-report.html"
        elsewhere.write_text("an older report")
        elsewhere.chmod(0o644)
        report.write_report(result, elsewhere)  # written over: the old mode does not stay
        assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600 and "v-candidate" in elsewhere.read_text()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(candidate.stat().st_mode) == 0o755
    assert stat.S_IMODE((candidate / "metadata.json").stat().st_mode) == 0o644


def test_a_report_the_disk_cannot_hold_leaves_no_empty_file(result: RetrainResult, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk after a promotion left a 0-byte report.html that looked written.
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd: int, *args: object, **kwargs: object) -> None:
            self.file = real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

        def __enter__(self) -> "FullDisk":
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report.os, "fdopen", FullDisk)
    target = tmp_path / "report.html"
    with pytest.raises(OSError):
        report.write_report(result, target)
    assert not target.exists()
