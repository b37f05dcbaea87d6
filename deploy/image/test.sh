#!/usr/bin/env bash
# Run the image built by `make image`, wait for its health check, and chat with the Mock model
# (docs/deployment.md, "Container image"). Run by `make test-image`: deploy/image/test.sh IMAGE
# PODMAN_RUN_OPTIONS adds options to `podman run` (e.g. `--runtime runc --ulimit nofile=1024:1024`
# where the host forbids raising limits or has hybrid cgroups).
set -euo pipefail
image=$1
name=lowart-test-$$
volume=lowart-test-data-$$
admin_key=lw-image-test-admin-key-0123456789abcdef
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
  podman rm --force --time 5 "$name" >/dev/null 2>&1 || true
  podman volume rm --force "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# shellcheck disable=SC2086 # the options are words
podman run --detach ${PODMAN_RUN_OPTIONS:-} --name "$name" --publish "127.0.0.1:$port:8080" \
  --volume "$volume:/data" --env ADMIN_KEY="$admin_key" "$image" >/dev/null

for _ in $(seq 60); do
  if curl --silent --fail "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  if [ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ]; then
    podman logs "$name" >&2; echo "test.sh: the container stopped" >&2; exit 1
  fi
  sleep 1
done
podman healthcheck run "$name"

answer=$(curl --silent --fail --max-time 30 "http://127.0.0.1:$port/v1/chat/completions" \
  -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
  -d '{"model": "mock", "messages": [{"role": "user", "content": "hello image"}]}')
echo "$answer" | python3 -c 'import json, sys; body = json.load(sys.stdin); assert body["choices"][0]["message"]["content"] == "hello image", body'
[ "$(podman exec "$name" id -u)" = 10001 ] || { echo "test.sh: the gateway runs as root" >&2; exit 1; }
podman exec "$name" test -f /data/lowart.db
echo "test-image: ok ($image answered a chat on port $port)"
