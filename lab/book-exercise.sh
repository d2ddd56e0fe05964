#!/usr/bin/env bash
# The book's build-farm exercise (chapter 16.4), with the plain docker CLI, on the lab farm.
# It uses the lab's own Docker config ($FARM_LAB_STATE/docker-config), so your contexts and
# builders are untouched; `lab/lab.sh down` removes what it made.
#
#   lab/book-exercise.sh [IMAGE]     default IMAGE: 127.0.0.1:5000/ch16-folder-list-2:latest
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
eval "$("$LAB_DIR/lab.sh" env)"
IMAGE=${1:-$FARM_LAB_REGISTRY/ch16-folder-list-2:latest}
SRC=$LAB_DIR/../examples/folder-list-2
BUILDER=labdemo
export DOCKER_CONFIG=$FARM_LAB_STATE/docker-config
unset DOCKER_HOST DOCKER_CONTEXT BUILDX_BUILDER
mkdir -p "$DOCKER_CONFIG"

"$LAB_DIR/lab.sh" status >/dev/null || { echo "the lab is not up: run 'make lab' first" >&2; exit 1; }
run() { printf '\n$ %s\n' "$*"; local t0=$EPOCHREALTIME; "$@"; awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "  (%.1f s)\n", b - a}'; }

# Start from scratch each time, so the exercise shows every step.
docker buildx rm -f "$BUILDER" >/dev/null 2>&1 || true
docker context rm -f node1 node2 >/dev/null 2>&1 || true

run docker context create node1 --docker "host=$FARM_LAB_NODE1"
run docker context create node2 --docker "host=$FARM_LAB_NODE2"
run docker context ls
run docker buildx create --name "$BUILDER" --node "$BUILDER-node1" --platform linux/amd64 --driver-opt network=host node1
run docker buildx create --append --name "$BUILDER" --node "$BUILDER-node2" --platform linux/arm64 --driver-opt network=host node2
run docker buildx ls
run docker buildx build --builder "$BUILDER" -t "$IMAGE" --platform linux/amd64,linux/arm64 --push "$SRC"
run docker buildx imagetools inspect "$IMAGE"

echo
echo "Each variant runs and prints its own architecture:"
index=$(docker buildx imagetools inspect --raw "$IMAGE")
node2_builder=$(docker --context node2 container inspect --format '{{.Id}}' "buildx_buildkit_$BUILDER-node2")
for platform in linux/amd64 linux/arm64; do
    arch=${platform#linux/}
    digest=$(printf '%s' "$index" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(next(m["digest"] for m in d["manifests"] if m["platform"]["architecture"]==sys.argv[1] and m["platform"]["os"]=="linux"))' "$arch")
    ref="${IMAGE%:*}@$digest"
    run docker --context node1 run --rm -q --platform "$platform" "$ref"
    if [[ $platform == linux/arm64 ]]; then
        if docker --context node1 run --rm --platform "$platform" "$ref" cat /folder-list/built-in-cgroup.txt | grep -q "$node2_builder"; then
            echo "  proof: the arm64 RUN step ran in node2's BuildKit container ${node2_builder:0:12}"
        else
            echo "  the arm64 variant was NOT built in node2's BuildKit container" >&2; exit 1
        fi
    fi
    docker --context node1 rmi -f "$ref" >/dev/null 2>&1 || true
done
echo
echo "Done: one tag, two platforms, two machines. Builder '$BUILDER' stays for re-runs; 'make lab-down' removes it."
