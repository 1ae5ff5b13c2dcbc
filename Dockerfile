# CommentGuard: the service under gunicorn, with a default model trained at build time.
#
#   docker build -t commentguard .                      (base: the official python:3.11-slim)
#   podman build --format docker --build-arg BASE_IMAGE=localhost/commentguard-base:bookworm .
#
# BASE_IMAGE is any Debian-like image with Python >= 3.10 as `python3` and the venv module:
# python:3.11-slim, or the debootstrap image built by deploy/build-base-image.sh where no
# registry can be reached. Both stages use it, so the venv's interpreter path is the same in
# the stage that builds it and the stage that runs it.
ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
# build: wheels for the project and its dependencies, a venv installed from them, the model.
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The package's metadata and sources only (see .dockerignore); tests and tools stay out.
COPY pyproject.toml README.md ./
COPY model/ model/
COPY training/ training/
COPY store/ store/
COPY service/ service/
COPY commentguard/ commentguard/
# All dependencies come as wheels (scikit-learn, numpy, scipy and psycopg publish manylinux
# wheels), so no compiler is needed here either; the network is used in this step only. The
# `postgres` extra is included: the image is meant to scale out onto PostgreSQL.
RUN python3 -m venv /opt/commentguard/venv \
 && /opt/commentguard/venv/bin/pip wheel --wheel-dir /wheels ".[postgres]" \
 && /opt/commentguard/venv/bin/pip install --no-index --find-links /wheels "commentguard[postgres]" \
 && /opt/commentguard/venv/bin/pip uninstall --yes pip setuptools wheel \
 && rm -rf /wheels
# Train the default model once, here, with the exact libraries the image runs: the artifact
# records the scikit-learn version and is refused by any other.
RUN /opt/commentguard/venv/bin/python -c \
    "from training.defaults import ensure_default_model; ensure_default_model('/opt/commentguard/model-default')"

# ---------------------------------------------------------------------------------------------
# runtime: the base image plus the venv and the model; no sources, wheels, pip or caches.
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="CommentGuard" \
      org.opencontainers.image.description="Self-hosted comment spam moderation (JSON and Akismet APIs)" \
      org.opencontainers.image.licenses="MIT"

# A fixed uid/gid, so a host directory used as the data volume can be chowned to it (10001).
# -l: no lastlog/faillog entry (a large uid would otherwise make sparse multi-GB files).
RUN groupadd --system --gid 10001 commentguard \
 && useradd --system -l --uid 10001 --gid commentguard --no-create-home \
            --home-dir /var/lib/commentguard --shell /usr/sbin/nologin commentguard \
 && mkdir -p /var/lib/commentguard \
 && chown commentguard:commentguard /var/lib/commentguard

COPY --from=build /opt/commentguard /opt/commentguard
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/commentguard-entrypoint

# Settings (all COMMENTGUARD_* variables in the README apply; override them with -e / env).
# HOST 0.0.0.0: reachable through the published port. The model path is left to its default,
# <data_dir>/model, on the volume; the entry point copies the built-in model there on first
# start. COMMENTGUARD_DEFAULT_MODEL is read only by the entry point.
ENV PATH=/opt/commentguard/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    COMMENTGUARD_HOST=0.0.0.0 \
    COMMENTGUARD_PORT=8000 \
    COMMENTGUARD_DATA_DIR=/var/lib/commentguard \
    COMMENTGUARD_DEFAULT_MODEL=/opt/commentguard/model-default

# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/commentguard
# The data directory: SQLite database, generated secret key and the model. Keep it on a
# volume; with PostgreSQL and COMMENTGUARD_SECRET_KEY only the model lives here.
VOLUME ["/var/lib/commentguard"]
EXPOSE 8000

# Liveness: the process answers /healthz on its port (python, because the image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('COMMENTGUARD_PORT', '8000'), timeout=4).read()"]

# gunicorn's arbiter is PID 1 (exec from the entry point): SIGTERM makes it stop the workers
# gracefully (30 s), flush their check logs and exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/commentguard-entrypoint"]
CMD ["commentguard", "serve"]
