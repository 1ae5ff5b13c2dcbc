"""The ``commentguard`` command: a click group whose commands live in :mod:`commentguard.commands`."""
from __future__ import annotations

import importlib

import click

#: Command modules; each defines a click command or group named ``command``.
COMMAND_MODULES: tuple[str, ...] = (
    "commentguard.commands.serve",
    "commentguard.commands.train",
    "commentguard.commands.evaluate",
    "commentguard.commands.check",
    "commentguard.commands.keys",
    "commentguard.commands.feedback",
    "commentguard.commands.retrain",
    "commentguard.commands.models",
    "commentguard.commands.upstream",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="commentguard")
def cli() -> None:
    """CommentGuard: self-hosted comment spam moderation."""


for _name in COMMAND_MODULES:
    cli.add_command(importlib.import_module(_name).command)


def main() -> None:
    """Console-script entry point."""
    cli()
