"""The ``commentguard`` command: a click group whose commands live in :mod:`commentguard.commands`.

Each command's module is imported only when that command runs (or ``--help`` lists them):
``train`` and ``evaluate`` bring in scikit-learn, a second of imports that ``serve``, ``keys``
and the others do not need. ``serve`` in particular forks its gunicorn workers from this
process, so what it imports every worker starts with.
"""
from __future__ import annotations

import importlib
from typing import Optional

import click

#: Command name → its module; each module defines a click command or group named ``command``.
COMMANDS: dict[str, str] = {
    "serve": "commentguard.commands.serve",
    "train": "commentguard.commands.train",
    "evaluate": "commentguard.commands.evaluate",
    "check": "commentguard.commands.check",
    "keys": "commentguard.commands.keys",
    "feedback": "commentguard.commands.feedback",
    "retrain": "commentguard.commands.retrain",
    "models": "commentguard.commands.models",
    "upstream": "commentguard.commands.upstream",
    "sites": "commentguard.commands.sites",
    "checks": "commentguard.commands.checks",
    "privacy": "commentguard.commands.privacy",
}


class LazyGroup(click.Group):
    """A group that imports a command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command: click.Command = importlib.import_module(module).command
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="commentguard")
def cli() -> None:
    """CommentGuard: self-hosted comment spam moderation."""


def main() -> None:
    """Console-script entry point."""
    cli()
