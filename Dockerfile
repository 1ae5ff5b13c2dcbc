# CommentGuard: the service under gunicorn, with a default model trained at build time.
#
#   docker build -t commentguard .                      (base: the official python:3.11-slim)
#   podman build --format docker --build-arg BASE_IMAGE=localhost/commentguard-base:bookworm .
#
# BASE_IMAGE is any Debian-like image with Python >= 3.11 as `python3` and the venv module:
# python:3.11-slim, or the debootstrap image built by deploy/build-base-image.sh where no
# registry can be reached. Both stages use it, so the venv's interpreter path is the same in
# the stage that builds it and the stage that runs it.
ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
# build: a venv with the dependencies, then the project, then the default model.
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, read from pyproject.toml alone (tomllib: Python 3.11+), so this slow layer
# is rebuilt only when they change, not on every source edit. All of them come as manylinux
# wheels (numpy, scipy, scikit-learn, psycopg-binary); only our own scoring core is compiled.
# The `postgres` extra is included: the image is meant to scale out onto PostgreSQL.
COPY pyproject.toml ./
RUN python3 -m venv /opt/commentguard/venv \
 && python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > requirements.txt \
 && /opt/commentguard/venv/bin/pip install --requirement requirements.txt
# The scoring core (model/_fastcore.pyx) is C, compiled when the package is installed: a C
# compiler and Python's headers, in this stage only (the runtime stage gets the built venv).
# python3-dev: the headers of Debian's python3 (python:3.11-slim has its own; there it is
# unused). Versions are not pinned: they are whatever the base image's Debian release carries.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
 && rm -rf /var/lib/apt/lists/*
# The package itself: its metadata and sources only (see .dockerignore). The build checks the
# core was compiled (setup.py makes it optional, so pip alone would go on without it). Then
# the build tools leave the venv, and so do the libraries' own test suites (about 65 MB in
# numpy, scipy and scikit-learn); the model below is trained after that, which shows nothing
# needs them.
COPY setup.py README.md ./
COPY model/ model/
COPY training/ training/
COPY store/ store/
COPY service/ service/
COPY commentguard/ commentguard/
RUN /opt/commentguard/venv/bin/pip install --no-deps . \
 && /opt/commentguard/venv/bin/python -I -c "from model.fastpath import DEFAULT_ENGINE as e; assert e == 'c', e" \
 && /opt/commentguard/venv/bin/pip uninstall --yes pip setuptools \
 && find /opt/commentguard/venv -depth -type d -name tests -exec rm -rf {} + \
 && find /opt/commentguard/venv -path '*/model/_fastcore.*' ! -name '*.so' -delete
# Train the default model once, here, with the exact libraries the image runs: the artifact
# records the scikit-learn version and is refused by any other. Artifact files are written
# owner-only (0600, by root here): made readable for the service user, who copies them.
RUN /opt/commentguard/venv/bin/python -c \
    "from training.defaults import ensure_default_model; ensure_default_model('/opt/commentguard/model-default')" \
 && chmod -R a+rX /opt/commentguard/model-default

# ---------------------------------------------------------------------------------------------
# runtime: the base image plus the venv and the model; no sources, build tools or caches.
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="CommentGuard" \
      org.opencontainers.image.description="Self-hosted comment spam moderation (JSON and Akismet APIs)" \
      org.opencontainers.image.licenses="MIT"

# A fixed uid/gid, so a host directory used as the data volume can be chowned to it (10001).
# /var/lib/commentguard-models: where several instances mount one shared model volume
# (compose.yaml); created here so such a volume starts out owned by the service user.
# -l: no lastlog/faillog entry (a large uid would otherwise make sparse multi-GB files).
RUN groupadd --gid 10001 commentguard \
 && useradd -l --uid 10001 --gid commentguard --no-create-home \
            --home-dir /var/lib/commentguard --shell /usr/sbin/nologin commentguard \
 && mkdir -p /var/lib/commentguard /var/lib/commentguard-models \
 && chown commentguard:commentguard /var/lib/commentguard /var/lib/commentguard-models \
 && chmod 0700 /var/lib/commentguard

# Trust the public CAs only. deploy/build-base-image.sh copies the build machine's own CAs (a
# TLS-intercepting proxy's, so pip works behind it) into the base image; they stay in the build
# stage. Where the upstream cross-check needs a private CA, mount it and set REQUESTS_CA_BUNDLE.
RUN rm -f /usr/local/share/ca-certificates/*.crt \
 && update-ca-certificates --fresh > /dev/null

COPY --from=build /opt/commentguard /opt/commentguard
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/commentguard-entrypoint

# Settings (all COMMENTGUARD_* variables in the README apply; override them with -e / env).
# HOST 0.0.0.0: reachable through the published port. The model path is left to its default,
# <data_dir>/model, on the volume; the entry point copies the built-in model there on first
# start (deploy/entrypoint.sh).
ENV PATH=/opt/commentguard/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    COMMENTGUARD_HOST=0.0.0.0 \
    COMMENTGUARD_PORT=8000 \
    COMMENTGUARD_DATA_DIR=/var/lib/commentguard

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
