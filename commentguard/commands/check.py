"""``commentguard check``: one verdict for one comment, as JSON."""
from __future__ import annotations

import json

import click

from commentguard.context import served_model_path
from model.artifact import load_model
from model.comment import Comment
from model.errors import ArtifactError
from service.settings import SettingsError, default_help, load_settings


@click.command("check")
@click.argument("text")
@click.option("--author", default="", help="comment_author")
@click.option("--author-url", default="", help="comment_author_url")
@click.option("--email", default="", help="comment_author_email")
@click.option("--type", "comment_type", default="", help="comment_type (comment, reply, forum-post...)")
@click.option("--model", "model_dir", default=None, type=click.Path(file_okay=False),
              help="The artifact directory (default: the model the service serves: the registry's active "
                   f"model, else {default_help('model_path')}).")
def command(text: str, author: str, author_url: str, email: str, comment_type: str,
            model_dir: str | None) -> None:
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
                      comment_author_email=email, comment_type=comment_type)
    click.echo(json.dumps(scorer.score(comment, thresholds).to_dict(), indent=2, ensure_ascii=False))
