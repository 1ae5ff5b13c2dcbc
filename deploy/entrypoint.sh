#!/bin/sh
# Container entry point: give the data volume a model on first start, then run the command.
#
# The image carries a default model trained at build time (in /opt/commentguard/model-default;
# BUILTIN_MODEL overrides the path - not a COMMENTGUARD_* name, the service warns about those). The
# service reads its model from COMMENTGUARD_MODEL_PATH (default <data_dir>/model), which lives
# on the volume, so a model retrained later is kept across restarts and image upgrades. When
# that path has no artifact yet, the built-in one is copied there (through a temporary
# directory and a rename, so instances sharing a model volume never see half a copy); an
# artifact already there - even a broken one, which /readyz then reports - is left alone.
set -eu

data_dir=${COMMENTGUARD_DATA_DIR:-/var/lib/commentguard}
model_path=${COMMENTGUARD_MODEL_PATH:-$data_dir/model}
default_model=${BUILTIN_MODEL:-/opt/commentguard/model-default}

seed_model() {
    [ -f "$model_path/metadata.json" ] && return 0
    [ -f "$default_model/metadata.json" ] || return 0  # `commentguard serve` trains one instead
    parent=$(dirname "$model_path")
    mkdir -p "$parent" || return 1
    tmp=$(mktemp -d "$parent/.model-seed.XXXXXX") || return 1
    if ! cp -R "$default_model/." "$tmp/"; then
        rm -rf "$tmp"
        return 1
    fi
    if [ -d "$model_path" ] && [ -z "$(ls -A "$model_path")" ]; then
        rmdir "$model_path" 2>/dev/null || true  # an empty mount point or leftover
    fi
    # mv -T: fails instead of nesting when another instance won the race.
    if mv -T "$tmp" "$model_path" 2>/dev/null; then
        echo "entrypoint: copied the built-in model into $model_path" >&2
    else
        rm -rf "$tmp"
    fi
}

# Fatal: `commentguard serve` would train a default model for a minute and then fail to write
# it there too, and a restart policy would repeat that in a loop.
if ! seed_model; then
    echo "entrypoint: could not copy the built-in model into $model_path: make it writable by uid $(id -u)" \
         "(a host directory: chown $(id -u):$(id -g) DIR)" >&2
    exit 1
fi
exec "$@"
