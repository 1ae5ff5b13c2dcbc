"""The exception tree of the model core.

Every error the core raises on purpose derives from :class:`ModelError`, so callers
can catch one class; each subclass says when it is raised.
"""
from __future__ import annotations


class ModelError(Exception):
    """Base class of every error the model core raises on purpose."""


class CommentFieldError(ModelError, ValueError):
    """Raised when a comment record has a field of the wrong type or a bad value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ArtifactError(ModelError):
    """Base class of the errors raised while saving or loading a model artifact."""


class ArtifactMissingError(ArtifactError, FileNotFoundError):
    """Raised when the artifact directory, its pickle or its metadata does not exist."""


class ArtifactCorruptError(ArtifactError):
    """Raised when the pickle's SHA-256 does not match its metadata, or the metadata is unreadable."""


class ArtifactIncompatibleError(ArtifactError):
    """Raised when the artifact was written by another scikit-learn version or format version."""


class FastPathUnsupportedError(ModelError, ValueError):
    """Raised when a fitted pipeline uses an option the compiled fast scoring path does not reproduce.

    Raised while the model is loaded (see :mod:`model.fastpath`), so a change of
    vectorizer settings fails loudly instead of scoring differently from the pipeline.
    """
