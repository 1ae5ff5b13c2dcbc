"""The retraining report: one self-contained HTML page for people deciding about a model.

Written beside the candidate artifact (``report.html``): the decision and the
rule behind it, both models' held-out figures side by side, ROC and
precision-recall curves, score histograms for ham and spam, confusion matrices,
and the moderator feedback the current model got wrong. Charts are drawn with
matplotlib's Agg backend and embedded as base64 PNG, so the file can be mailed
or archived on its own. Every piece of comment text is HTML-escaped.
"""
from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from training.retrain import RetrainResult

REPORT_NAME = "report.html"
MAX_WRONG_ROWS = 200
_ROWS = (("n", "held-out comments", "{:d}"), ("spam", "of them spam", "{:d}"),
         ("recall", "spam caught (recall)", "{:.4f}"), ("false_positive_rate", "ham flagged", "{:.4f}"),
         ("precision", "precision", "{:.4f}"), ("f1", "F1", "{:.4f}"), ("mcc", "MCC", "{:.4f}"),
         ("unsure_rate", "held for moderation", "{:.4f}"), ("roc_auc", "ROC AUC", "{:.4f}"),
         ("brier", "Brier score", "{:.4f}"))

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2330;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.1em;margin:1em 0}
.promoted{background:#e6f6ea;border:1px solid #7bc48e}.rejected{background:#fdecec;border:1px solid #e08a8a}
.forced{background:#fff6dc;border:1px solid #e0c060}
table{border-collapse:collapse;margin:.6em 0} th,td{padding:.35em .7em;border:1px solid #dde;text-align:right}
th{background:#f4f5f9} td.text{text-align:left;max-width:560px;word-wrap:break-word}
td.l,th.l{text-align:left} .better{color:#17803a;font-weight:600} .worse{color:#b3261e;font-weight:600}
.charts img{max-width:100%;border:1px solid #eee;margin:.4em 0} .muted{color:#667}
code{background:#f4f5f9;padding:0 .25em;border-radius:3px}
"""


def write_report(result: RetrainResult, path: Optional[Path] = None) -> Path:
    """Write the report for ``result`` (default: ``<candidate>/report.html``); return its path."""
    target = path or result.path / REPORT_NAME
    page = render_report(result)
    # It quotes moderator-labelled comments: the owner's only, whatever the umask (it was 0644, and
    # the models directory may lie outside the owner-only data directory). The service never
    # reads it; the artifact beside it stays readable by the service's user (model.artifact).
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(fd, 0o600)  # a report written over keeps its old mode otherwise
            out.write(page)
    except OSError:
        target.unlink(missing_ok=True)  # a full disk left an empty report.html that looked written
        raise
    return target


def render_report(r: RetrainResult) -> str:
    """The whole page as a string."""
    e = html.escape
    kind = "forced" if r.forced else ("promoted" if r.promoted else "rejected")
    headline = {"promoted": "Promoted: the candidate is now the active model",
                "rejected": "Rejected: the current model stays active",
                "forced": "Promoted by --force although the gate said no"}[kind]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>CommentGuard retrain report: {e(r.version)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Retrain report: candidate <code>{e(r.version)}</code></h1>",
        f"<p class='muted'>current model: <code>{e(r.current_version or 'none')}</code> · "
        f"trained on {r.metadata['training']['rows']} comments ({r.metadata['training']['spam']} spam), "
        f"{len(r.feedback)} moderator labels in the store, {r.feedback_held_out} of them (the most recent) "
        f"held out</p>",
        f"<div class='verdict {kind}'><strong>{e(headline)}.</strong><ul>"
        + "".join(f"<li>{e(item)}</li>" for item in r.decision.split("; ")) + "</ul></div>",
        "<p>The gate: promote only if the candidate's <em>ham flagged</em> rate is at most the current "
        f"model's + {r.gate.tolerance_fpr:g} and its <em>spam caught</em> rate at least the current "
        f"model's − {r.gate.tolerance_recall:g}, both measured on the same held-out comments, each model "
        "at its own thresholds (flagged = verdict spam or discard). Only held-out comments the current "
        "model was not trained on count for the gate (its figures on comments it learned from would "
        "flatter it); when it trained on every held-out comment of a class (the default model saw the "
        "whole seed corpus), its own out-of-fold figure stands in. Where the held-out comments are too "
        "few to measure a difference that finely, each tolerance widens to 1.96 standard errors of it, "
        f"but never beyond {r.gate.max_margin_fpr:g} (ham flagged) or {r.gate.max_margin_recall:g} (spam caught). "
        "The table below is on all held-out comments, so the current model's column there is "
        "optimistic.</p>",
        "<h2>Held-out figures</h2>", _metrics_table(r.candidate_eval, r.current_eval),
    ]
    refit = r.metadata.get("training", {}).get("refit_after_gate")
    if isinstance(refit, dict):
        # The figures are the gate's candidate's; what was promoted is the same recipe refitted.
        parts.insert(len(parts) - 2, (
            f"<p>The gate judged <code>{e(str(refit.get('candidate_version')))}</code>, trained without the "
            f"{e(str(refit.get('held_out_rows')))} held-out comments; every figure and chart in this report "
            f"is that candidate's. <code>{e(r.version)}</code> is the same recipe refitted on all comments, "
            "the held-out ones included, which is what was promoted (the gate's figures stand for it, as "
            "out-of-fold figures stand for a final fit).</p>"))
    if r.candidate_feedback_eval is not None:
        parts += [f"<h2>The {r.feedback_held_out} most recent moderator labels (held out)</h2>",
                  _metrics_table(r.candidate_feedback_eval, r.current_feedback_eval)]
    parts += _charts(r) + ["<h2>Confusion matrices (held out)</h2>", _confusion(r),
              "<h2>Feedback the current model got wrong</h2>", _wrong_feedback(r), "</body></html>"]
    return "\n".join(parts)


def _charts(r: RetrainResult) -> list[str]:
    """The curves and histograms, or a note when matplotlib (the ``report`` extra) is missing."""
    if not charts_available():
        # The service image leaves plotting out; the figures and tables still tell the story.
        return ["<h2>Curves and score distributions</h2><p class='muted'>Charts need matplotlib: "
                "<code>pip install 'commentguard[report]'</code>.</p>"]
    return ["<h2>Curves</h2><div class='charts'>", _img(_curves_png(r), "ROC and precision-recall curves"),
            "</div><h2>Score distributions</h2><div class='charts'>",
            _img(_histograms_png(r), "score histograms for ham and spam"), "</div>"]


def charts_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _metrics_table(cand: dict[str, Any], cur: Optional[dict[str, Any]]) -> str:
    rows = ["<table><tr><th class='l'>figure</th><th>candidate</th><th>current</th></tr>"]
    lower_is_better = {"false_positive_rate", "brier", "unsure_rate"}
    for key, label, fmt in _ROWS:
        a, b = cand.get(key), (cur or {}).get(key)
        cls = ""
        if isinstance(a, float) and isinstance(b, float) and key not in ("n", "spam") and abs(a - b) > 1e-9:
            good = (a < b) if key in lower_is_better else (a > b)
            cls = " class='better'" if good else " class='worse'"
        rows.append(f"<tr><td class='l'>{html.escape(label)}</td><td{cls}>{_fmt(fmt, a)}</td>"
                    f"<td>{_fmt(fmt, b)}</td></tr>")
    return "\n".join(rows) + "</table>"


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return html.escape(str(value))


def _models(r: RetrainResult) -> list[tuple[str, np.ndarray, str]]:
    out = [("candidate", r.candidate_scores, "#1f6fd1")]
    if r.current_scores is not None:
        out.append(("current", r.current_scores, "#d1681f"))
    return out


def _curves_png(r: RetrainResult) -> bytes:
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _pyplot()
    labels = np.array([row.label for row in r.held_out])
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, scores, color in _models(r):
        fpr, tpr, _ = roc_curve(labels, scores)
        roc.plot(fpr, tpr, color=color, label=name)
        precision, recall, _ = precision_recall_curve(labels, scores)
        pr.plot(recall, precision, color=color, label=name)
    roc.plot([0, 1], [0, 1], color="#bbb", linestyle=":")
    roc.set(title="ROC (held out)", xlabel="ham flagged (false-positive rate)", ylabel="spam caught (recall)")
    pr.set(title="Precision-recall (held out)", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    for ax in (roc, pr):
        ax.grid(alpha=.3)
        ax.legend(loc="lower right" if ax is roc else "lower left")
    return _png(fig)


def _histograms_png(r: RetrainResult) -> bytes:
    plt = _pyplot()
    labels = np.array([row.label for row in r.held_out])
    models = _models(r)
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    bins = np.linspace(0, 1, 41)
    thresholds = {"candidate": r.candidate_eval["thresholds"]["spam"]}
    if r.current_eval is not None:
        thresholds["current"] = r.current_eval["thresholds"]["spam"]
    for ax, (name, scores, _) in zip(axes[0], models):
        ax.hist(scores[labels == 0], bins=bins, alpha=.65, color="#2e9b57", label="ham")
        ax.hist(scores[labels == 1], bins=bins, alpha=.65, color="#c23b3b", label="spam")
        ax.axvline(thresholds[name], color="#333", linestyle="--", label="spam threshold")
        ax.set(title=f"{name} model", xlabel="score", ylabel="comments (log scale)", yscale="log")
        ax.legend()
    return _png(fig)


def _confusion(r: RetrainResult) -> str:
    labels = np.array([row.label for row in r.held_out])
    cells = []
    for name, scores, _ in _models(r):
        ev = r.candidate_eval if name == "candidate" else r.current_eval
        flagged = scores >= ev["thresholds"]["spam"]  # type: ignore[index]
        tn, fp = int(((labels == 0) & ~flagged).sum()), int(((labels == 0) & flagged).sum())
        fn, tp = int(((labels == 1) & ~flagged).sum()), int(((labels == 1) & flagged).sum())
        cells.append(f"<div style='display:inline-block;margin-right:2em;vertical-align:top'><h3>{name}</h3>"
                     "<table><tr><th></th><th>passed</th><th>flagged</th></tr>"
                     f"<tr><th class='l'>ham</th><td>{tn}</td><td>{fp}</td></tr>"
                     f"<tr><th class='l'>spam</th><td>{fn}</td><td>{tp}</td></tr></table></div>")
    return "".join(cells)


def _wrong_feedback(r: RetrainResult) -> str:
    if r.feedback_current_right is None or r.feedback_current_scores is None:
        return "<p class='muted'>No feedback, or no current model to judge it.</p>"
    assert r.feedback_candidate_scores is not None
    held = {id(x) for x in r.held_out}
    wrong = [i for i, ok in enumerate(r.feedback_current_right) if not ok]
    if not wrong:
        return "<p>The current model agrees with every moderator label.</p>"
    rows = [f"<p>{len(wrong)} of {len(r.feedback)} labels disagree with the current model's verdict"
            + (f" (first {MAX_WRONG_ROWS} shown)" if len(wrong) > MAX_WRONG_ROWS else "") + ".</p>",
            "<table><tr><th>id</th><th>label</th><th>current score</th><th>candidate score</th>"
            "<th>held out</th><th class='l'>comment</th></tr>"]
    for i in wrong[:MAX_WRONG_ROWS]:
        row = r.feedback[i]
        text = html.escape(row.comment.comment_content[:600])
        author = html.escape(row.comment.comment_author or "")
        byline = f"<br><span class='muted'>— {author}</span>" if author else ""
        rows.append(f"<tr><td>{row.line}</td><td>{'spam' if row.label else 'ham'}</td>"
                    f"<td>{r.feedback_current_scores[i]:.3f}</td><td>{r.feedback_candidate_scores[i]:.3f}</td>"
                    f"<td>{'yes' if id(row) in held else 'no'}</td><td class='text'>{text}{byline}</td></tr>")
    return "\n".join(rows) + "</table>"


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    return plt


__all__ = ["REPORT_NAME", "render_report", "write_report"]
