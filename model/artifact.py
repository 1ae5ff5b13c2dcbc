"""Model artifacts: a joblib pickle, its serving tables and JSON metadata, written atomically, checked before loading.

An artifact is a directory holding ``model.joblib`` (the fitted pipeline),
``scoring.npz`` (the same model as the fast path's plain tables, model.tables)
and ``metadata.json`` (version id, creation time, library versions, the SHA-256
of both files, training data sources, metrics and thresholds). A pickle runs
code when it is loaded, so :func:`verify_artifact` reads the metadata first and
refuses an artifact whose checksums or scikit-learn version do not match
*before* unpickling or reading anything. :func:`load_model` then scores from
the tables without unpickling, and without importing scikit-learn; the pipeline
is unpickled only when asked for (``Scorer.pipeline``), or when an artifact has
no tables (written before they existed).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from importlib import metadata as distributions
from pathlib import Path
from typing import Any

from model.errors import (
    ArtifactCorruptError,
    ArtifactError,
    ArtifactIncompatibleError,
    ArtifactMissingError,
    FastPathUnsupportedError,
)
from model.fastpath import CompiledModel
from model.features import FEATURES_VERSION
from model.reasons import quiet_words
from model.scorer import Scorer
from model.tables import TABLES_NAME, read_tables, tables_bytes
from model.verdict import Thresholds

PICKLE_NAME = "model.joblib"
METADATA_NAME = "metadata.json"
#: The artifact format this release writes. 2 is 1's layout: the number went up so that releases
#: from before ``features_version`` (before 2026-11-28), which check only that the format is 1,
#: refuse an artifact whose features they do not compute. They served one silently, scoring its
#: weights with their own older normalisation: in a probe's rolling upgrade an old instance gave
#: "buy cheap ѵіаgrа here" unsure 0.53 where the new one said spam 0.92, both naming the same model.
FORMAT_VERSION = 2
#: The formats this release reads (1: artifacts written before 2026-11-28).
READABLE_FORMATS = (1, 2)


def library_versions() -> dict[str, str]:
    """The versions an artifact depends on, as recorded in its metadata."""
    return {
        "python": platform.python_version(),
        "scikit-learn": _installed("scikit-learn"),
        "joblib": _installed("joblib"),
    }


def _installed(distribution: str) -> str:
    # Read from the installed package's metadata: importing scikit-learn takes a second.
    try:
        return distributions.version(distribution)
    except distributions.PackageNotFoundError:
        return "not installed"


def new_version_id(created: datetime, digest: str) -> str:
    """A sortable, unique version id: UTC time plus the start of the pickle's hash."""
    return created.strftime("%Y%m%dT%H%M%SZ") + "-" + digest[:8]


def save_model(pipeline: Any, out_dir: str | Path, *, thresholds: Thresholds,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``pipeline``, its serving tables and its metadata into ``out_dir``; return the metadata written.

    Each file is written to a temporary name in the same directory and renamed
    into place, the pickle and tables first and the metadata last, so a reader
    never sees a half-written file (and a reader caught between the renames is
    refused by a checksum rather than served a mismatched model). A pipeline the
    tables cannot hold (one the fast path does not reproduce, or with an
    accent-stripping function of its own) is saved without them.
    """
    import joblib  # here, not at the top: the service loads artifacts without it

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = _tables_of(pipeline)
    tmp_pickle = _temp_path(out, PICKLE_NAME)
    tmp_tables = _temp_path(out, TABLES_NAME)
    try:
        joblib.dump(pipeline, tmp_pickle, compress=3)
        digest = sha256_file(tmp_pickle)
        created = datetime.now(timezone.utc)
        meta: dict[str, Any] = dict(metadata or {})
        meta.update({
            "format_version": FORMAT_VERSION,
            "features_version": FEATURES_VERSION,
            "version": meta.get("version") or new_version_id(created, digest),
            "created": created.isoformat(timespec="seconds"),
            "libraries": library_versions(),
            "sha256": digest,
            "thresholds": thresholds.to_dict(),
        })
        meta.pop("tables", None)
        if tables is not None:
            tmp_tables.write_bytes(tables)
            meta["tables"] = {"file": TABLES_NAME, "sha256": hashlib.sha256(tables).hexdigest()}
            os.replace(tmp_tables, out / TABLES_NAME)
        elif (out / TABLES_NAME).exists():
            (out / TABLES_NAME).unlink()  # an older model's tables: this one has none
        os.replace(tmp_pickle, out / PICKLE_NAME)
    finally:
        for tmp in (tmp_pickle, tmp_tables):
            if tmp.exists():
                tmp.unlink()
    write_json_atomic(out / METADATA_NAME, meta)
    return meta


def _tables_of(pipeline: Any) -> bytes | None:
    """The serving tables of a fitted pipeline, or ``None`` where they cannot hold it."""
    from model.compile_pipeline import spec_from_pipeline

    try:
        return tables_bytes(spec_from_pipeline(pipeline), quiet_words())
    except FastPathUnsupportedError:
        return None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of the artifact at ``path``, without touching the pickle."""
    meta_path = Path(path) / METADATA_NAME
    if not Path(path).is_dir():
        raise ArtifactMissingError(f"no model artifact at {path} (directory missing)")
    if not meta_path.is_file():
        raise ArtifactMissingError(f"no model artifact at {path} ({METADATA_NAME} missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactCorruptError(f"{meta_path} is not readable JSON: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise ArtifactCorruptError(f"{meta_path} lacks the pickle's sha256")
    return meta


def features_version(meta: dict[str, Any], path: str | Path = "") -> int:
    """The features version an artifact was trained with (1 for artifacts written before it was recorded)."""
    value = meta.get("features_version", 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        where = f"{path}/{METADATA_NAME}" if path else METADATA_NAME
        raise ArtifactCorruptError(f"{where} has a malformed 'features_version': {json.dumps(value)} "
                                   "(a whole number from 1)")
    return value


def verify_artifact(path: str | Path) -> dict[str, Any]:
    """Check an artifact without unpickling it; return its metadata or raise an ArtifactError."""
    meta = read_metadata(path)
    if meta.get("format_version") not in READABLE_FORMATS or isinstance(meta.get("format_version"), bool):
        raise ArtifactIncompatibleError(
            f"artifact format {meta.get('format_version')!r} at {path}; this release reads "
            f"{' and '.join(map(str, READABLE_FORMATS))}"
        )
    features = features_version(meta, path)
    if features > FEATURES_VERSION:
        raise ArtifactIncompatibleError(
            f"artifact at {path} was trained by a newer release (features version {features}; this "
            f"release reads up to {FEATURES_VERSION}): upgrade, or retrain it with this release"
        )
    libraries = meta.get("libraries")
    if not isinstance(libraries, dict) or not isinstance(meta.get("sha256"), str):
        raise ArtifactCorruptError(f"{path}/{METADATA_NAME} has a malformed 'libraries' or 'sha256' entry")
    wanted = str(libraries.get("scikit-learn", "unknown"))
    installed = _installed("scikit-learn")
    if _minor(wanted) != _minor(installed):
        raise ArtifactIncompatibleError(
            f"artifact at {path} was trained with scikit-learn {wanted}, this service runs "
            f"{installed}; retrain it with this release (commentguard train)"
        )
    _verify_file(Path(path), PICKLE_NAME, meta["sha256"])
    tables = meta.get("tables")
    if tables is not None:
        if not isinstance(tables, dict) or tables.get("file") != TABLES_NAME or not isinstance(
                tables.get("sha256"), str):
            raise ArtifactCorruptError(f"{path}/{METADATA_NAME} has a malformed 'tables' entry")
        _verify_file(Path(path), TABLES_NAME, tables["sha256"])
    return meta


def _verify_file(artifact: Path, name: str, digest: str) -> None:
    """An artifact file is there and matches the SHA-256 its metadata gives, or an ArtifactError."""
    file = artifact / name
    if not file.is_file():
        raise ArtifactMissingError(f"no model artifact at {artifact} ({name} missing)")
    if sha256_file(file) != digest:
        raise ArtifactCorruptError(
            f"{file} does not match the SHA-256 in its metadata (changed or truncated); refusing to load it")


def load_model(path: str | Path, *, engine: str | None = None, unpickle: bool = True) -> Scorer:
    """Verify the artifact at ``path`` and wrap it in a :class:`Scorer`.

    The scorer is built from the serving tables, without unpickling; its ``pipeline`` is
    unpickled on first use. An artifact without tables is unpickled and compiled, unless
    ``unpickle`` is false (the service): then it is refused with
    :class:`ArtifactIncompatibleError`. The checksums beside a pickle only show it is whole:
    whoever can write the artifact can rewrite them, and unpickling runs what the pickle says.
    ``engine``: what scores the text features (:data:`model.fastpath.ENGINES`; default: the
    compiled core when it was built). Asking for ``"c"`` where it was not built is refused
    with :class:`ArtifactIncompatibleError`, like any model the fast path cannot serve.
    """
    meta = verify_artifact(path)
    try:
        thresholds = Thresholds.from_dict(meta["thresholds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactCorruptError(f"bad thresholds in {path}/{METADATA_NAME}: {exc}") from exc
    try:
        if "tables" in meta:
            spec, quiet = read_tables(Path(path) / TABLES_NAME)
            return Scorer(CompiledModel(spec, engine), thresholds=thresholds, version=str(meta["version"]),
                          metadata=meta, quiet=quiet,
                          pipeline_loader=lambda: load_pipeline(path, expect_sha256=meta["sha256"]))
        if not unpickle:
            raise ArtifactIncompatibleError(
                f"the model at {path} has no serving tables ({TABLES_NAME}), and the service does not "
                f"unpickle models: run `commentguard models add-tables {path}` if you trust the file "
                "(it unpickles it once, to write the tables), or retrain")
        return Scorer(load_pipeline(path, meta), thresholds=thresholds, version=str(meta["version"]),
                      metadata=meta, engine=engine)
    except FastPathUnsupportedError as exc:  # e.g. a vectorizer option the fast path cannot reproduce
        raise ArtifactIncompatibleError(f"the model at {path} cannot be served: {exc}") from exc


def add_tables(path: str | Path) -> dict[str, Any]:
    """Write the serving tables of an artifact that has none (saved before they existed); return
    its new metadata. Unpickles the artifact: only for a file its owner trusts."""
    out = Path(path)
    meta = verify_artifact(out)
    if "tables" in meta:
        return meta
    tables = _tables_of(load_pipeline(out, meta))
    if tables is None:
        raise ArtifactIncompatibleError(f"the pipeline at {path} cannot be held by serving tables "
                                        "(the fast path does not reproduce it): retrain it")
    tmp_tables = _temp_path(out, TABLES_NAME)
    try:
        tmp_tables.write_bytes(tables)
        os.replace(tmp_tables, out / TABLES_NAME)
    finally:
        if tmp_tables.exists():
            tmp_tables.unlink()
    meta = dict(meta, tables={"file": TABLES_NAME, "sha256": hashlib.sha256(tables).hexdigest()})
    write_json_atomic(out / METADATA_NAME, meta)  # last: the tables count once they are named here
    return meta


def load_pipeline(path: str | Path, meta: dict[str, Any] | None = None, *,
                  expect_sha256: str | None = None) -> Any:
    """Verify (unless ``meta`` says it was just verified) and unpickle the artifact's fitted pipeline.

    ``expect_sha256``: the pickle's checksum when a scorer was loaded; an artifact rewritten
    since (a retrain into the same directory) is refused rather than mixed with that scorer.
    """
    import joblib
    from sklearn.pipeline import Pipeline

    if meta is None:
        meta = verify_artifact(path)
    if expect_sha256 is not None and meta["sha256"] != expect_sha256:
        raise ArtifactCorruptError(f"the artifact at {path} was rewritten after this model was loaded from it")
    try:
        pipeline = joblib.load(Path(path) / PICKLE_NAME)
    except Exception as exc:  # a pickle that matched its hash but still fails: say so clearly
        raise ArtifactCorruptError(f"could not unpickle the model at {path}: {exc}") from exc
    if not isinstance(pipeline, Pipeline) or "classifier" not in pipeline.named_steps:
        raise ArtifactIncompatibleError(f"the artifact at {path} does not hold a CommentGuard pipeline")
    return pipeline


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = _temp_path(path.parent, path.name)
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _temp_path(directory: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    # mkstemp makes the file owner-only; an artifact is meant to be read by other
    # users too (a container's service user, instances sharing a model volume).
    os.chmod(tmp, shared_mode(0o644))
    return Path(tmp)


def shared_mode(mode: int) -> int:
    """``mode`` as the process's umask allows it: for artifact files and directories made
    owner-only by ``mkstemp``/``mkdtemp``, which others (the service's user) must read."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


__all__ = [
    "ArtifactError", "add_tables", "load_model", "shared_mode", "load_pipeline", "save_model", "read_metadata", "verify_artifact",
    "sha256_file", "write_json_atomic", "library_versions", "PICKLE_NAME", "METADATA_NAME", "TABLES_NAME",
]
