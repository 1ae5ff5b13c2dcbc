"""``commentguard check``: one verdict for one comment, as JSON."""
from __future__ import annotations

import json
from typing import Any, Optional

import click

from commentguard.context import cli_store, registered_site, served_model_path
from model.artifact import load_model
from model.comment import Comment
from model.errors import ArtifactError
from model.scorer import Scorer
from model.verdict import Thresholds
from service.settings import Settings, SettingsError, default_help, load_settings
from service.sender_history import SenderHistory
from service.site_settings import resolve_verdict_settings
from store import Store


@click.command("check")
@click.argument("text")
@click.option("--author", default="", help="comment_author")
@click.option("--author-url", default="", help="comment_author_url")
@click.option("--email", default="", help="comment_author_email (with --site, the site's moderators' labels for it count)")
@click.option("--ip", default="", help="user_ip (with --site, the site's moderators' labels for it count)")
@click.option("--type", "comment_type", default="", help="comment_type (comment, reply, forum-post...)")
@click.option("--model", "model_dir", default=None, type=click.Path(file_okay=False),
              help="The artifact directory (default: the model the service serves: the registry's active "
                   f"model, else {default_help('model_path')}).")
@click.option("--site", "site_url", default=None, metavar="URL",
              help="Answer as a check by this registered site's keys is answered: its own mode and thresholds "
                   "(`commentguard sites set`), else the global ones.")
def command(text: str, author: str, author_url: str, email: str, ip: str, comment_type: str,
            model_dir: str | None, site_url: str | None) -> None:
    """Score TEXT and print the verdict with its reasons."""
    if not text.strip():
        raise click.BadParameter("the comment's text must not be empty (the API refuses it too)", param_hint="TEXT")
    try:
        settings = load_settings()  # the store, the model path, and the threshold overrides the service applies
        if model_dir is None:
            # What the service would say: after a retrain that is the registry's model, not the
            # configured starting one (a probe got ham here for a comment the service held).
            model_dir, note = served_model_path(settings)
            if note:
                click.echo(f"note: {note}", err=True)
        scorer = load_model(model_dir)
        thresholds = settings.thresholds_for(scorer.thresholds) if settings.has_threshold_overrides else None
    except (SettingsError, ArtifactError) as exc:
        raise click.ClickException(str(exc)) from exc
    comment = Comment(comment_content=text, comment_author=author, comment_author_url=author_url,
                      comment_author_email=email, user_ip=ip, comment_type=comment_type)
    if site_url is None:
        click.echo(json.dumps(scorer.score(comment, thresholds).to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(json.dumps(_as_site(settings, site_url, scorer, thresholds, comment), indent=2, ensure_ascii=False))


def _as_site(settings: Settings, site_url: str, scorer: Scorer, global_thresholds: Optional[Thresholds],
             comment: Comment) -> dict[str, Any]:
    """The verdict as the JSON API answers it for a check by ``site_url``'s keys, with the site and mode."""
    with cli_store(create=False) as store:
        site = registered_site(store, site_url)
        history = _sender_history(settings, store, comment)
    chosen = resolve_verdict_settings(settings, site.settings, global_thresholds, scorer.thresholds)
    if chosen.out_of_order:
        click.echo(f"note: the site's thresholds, with the global overrides and the model's "
                   f"{scorer.thresholds.to_dict()}, are out of order: its checks use the global thresholds "
                   "(and its own mode) until `commentguard sites set` mends them", err=True)
    verdict = scorer.score(comment, chosen.score_thresholds)
    if history is not None:  # as the workers apply it, before the fixed rules (which this command leaves out)
        verdict = history.apply(comment, verdict, chosen.thresholds, site.id)
    out: dict[str, Any] = {"site": site.url, "mode": "log_only" if chosen.log_only else "enforce",
                           **verdict.to_dict()}
    if chosen.log_only:
        # As the JSON API answers in log-only mode: ham on the wire, the model's verdict beside it.
        out["recorded_verdict"] = out["verdict"]
        out["verdict"] = "ham"
        out["enforced"] = False
    return out


def _sender_history(settings: Settings, store: Store, comment: Comment) -> Optional[SenderHistory]:
    """The moderators' labels per sender, loaded as the workers load them, when history is on and
    the comment names a sender (``--email``, ``--ip``)."""
    if not settings.sender_history or not (comment.comment_author_email.strip() or comment.user_ip.strip()):
        return None
    history = SenderHistory(store, settings.sender_history_days)
    # Read here, not through refresh(): a store error is the command's error (cli_store), not a
    # warning. Applied once the store is closed: a sender's digest needs only the secret.
    history.labels = store.sender_label_counts(settings.sender_history_days)
    return history
