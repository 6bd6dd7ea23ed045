#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install it (Debian's docker.io) if missing, start
# dockerd if it is not running (no systemd here), wait until `docker info` works.
# Idempotent: when the engine already answers this takes a fraction of a second.
#
#   ci/docker-engine.sh            # env: DOCKERD_LOG (default /tmp/dockerd.log)
set -euo pipefail

log=${DOCKERD_LOG:-/tmp/dockerd.log}
started=$SECONDS

if docker info >/dev/null 2>&1; then
    echo "docker-engine: already running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)   # ci/build-runner-image.sh needs it
if ((${#missing[@]})); then
    echo "docker-engine: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "docker-engine: starting dockerd (log: $log)"
    # setsid: the engine outlives this script and is not hit by a Ctrl-C meant for the tests.
    setsid dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
        echo "docker-engine: ready ($(docker version --format '{{.Server.Version}}')) in $((SECONDS - started)) s"
        exit 0
    fi
    sleep 0.5
done
echo "docker-engine: dockerd did not answer within 60 s; the end of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
