"""Shared pytest fixtures: a tiny real model, settings, and the Flask ``app``/``client``/``runner`` trio.

The model is trained once per session on a handful of made-up comments (a
second or so), saved and loaded through the real artifact code, so service
tests exercise the real scorer. Settings point into ``tmp_path``, so no test
writes to the working directory. Add fixtures here when several test modules
need them; keep module-specific ones in the module.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from model.artifact import load_model, save_model
from model.comment import Comment
from model.pipeline import build_pipeline, fit_pipeline
from model.scorer import Scorer
from model.verdict import Thresholds
from service.app import create_app
from service.settings import Settings

TEST_SECRET_KEY = "test-secret-key-not-for-production"
TEST_THRESHOLDS = Thresholds(unsure=0.4, spam=0.6, discard=0.9)

_HAM = [
    "Thanks for the clear explanation, the second example finally made it click for me.",
    "Does this approach also work with Python 3.10, or do I need a newer version?",
    "I tried the recipe last night and my family loved it. Less sugar next time.",
    "Great write-up. Could you share the benchmark numbers for the larger data set?",
    "Small typo in the third paragraph: it should say their, not there.",
    "I disagree with the conclusion, but the argument is well made. Thanks for posting.",
    "Where did you buy the blue fabric in the photos? It looks lovely.",
    "This helped me fix my build, the missing flag was exactly the problem.",
]
_SPAM = [
    "Buy cheap viagra online now!!! Best prices http://bit.ly/cheap-pills",
    "Earn $5000 a week from home, click here http://tinyurl.com/easy-money",
    "Hot singles in your area, visit http://bit.ly/hot-dates now",
    "Cheap replica watches and bags, free shipping, http://replica-shop.example/buy",
    "Make money fast with crypto casino bonus, click http://bit.ly/casino-bonus",
    "Best SEO backlinks cheap, rank first on google http://seo-links.example",
    "Get free bitcoin now click here http://tinyurl.com/free-btc winner",
    "Cheap loans no credit check apply now http://bit.ly/fast-loans",
]


def tiny_training_set() -> tuple[list[Comment], list[int]]:
    """A handful of comments and labels (1 = spam): enough to fit, not to evaluate."""
    ham = [Comment(comment_content=t, comment_author="Reader") for t in _HAM]
    spam = [Comment(comment_content=t, comment_author="Best Deals",
                    comment_author_url="http://bit.ly/x") for t in _SPAM]
    return ham + spam, [0] * len(ham) + [1] * len(spam)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model artifact directory, trained once per session (treat it as read-only)."""
    comments, labels = tiny_training_set()
    pipeline = fit_pipeline(build_pipeline(), comments, labels)
    out = tmp_path_factory.mktemp("model") / "model"
    save_model(pipeline, out, thresholds=TEST_THRESHOLDS, metadata={"version": "test-model-1"})
    return out


@pytest.fixture(scope="session")
def scorer(model_dir: Path) -> Scorer:
    """The session's real scorer, loaded from :func:`model_dir`."""
    return load_model(model_dir)


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    """Test settings: data in ``tmp_path``, the session model, a fixed secret."""
    return Settings(data_dir=tmp_path / "var", model_path=model_dir, secret_key=TEST_SECRET_KEY)


@pytest.fixture
def make_app(settings: Settings, scorer: Scorer) -> Callable[..., Flask]:
    """Build an app with setting overrides: ``make_app(mode="log_only")``, ``make_app(scorer=None)``.

    ``scorer`` defaults to the session scorer; pass ``scorer=None`` to load from
    ``model_path`` as the real service does.
    """
    def build(*, scorer: Any = scorer, **overrides: Any) -> Flask:
        app = create_app(dataclasses.replace(settings, **overrides), scorer=scorer)
        app.config["TESTING"] = True
        return app

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The service app with the session model and default settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner bound to ``app``; pass the command: ``runner.invoke(cli, ["serve"])``."""
    return app.test_cli_runner()
