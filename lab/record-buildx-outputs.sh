#!/usr/bin/env bash
# Record, from each real buildx on the lab, the outputs farm parses, for the unit tests
# (tests/unit/test_buildx_outputs.py). Nobody writes these files by hand: run this again
# after a buildx changes, and commit what it wrote.
#
#   lab/record-buildx-outputs.sh [VERSION...]     VERSION: 0.13 (the system's), 0.29 (lab/lab.sh install)
#
# Writes tests/unit/data/buildx/<VERSION>/: version.txt, bake-print.json (the bake file
# beside this data, both targets), ls.txt, ls.json (buildx >= 0.14), inspect.txt,
# instance.json, metadata.json (a two-node, two-platform build pushed by digest),
# bake-metadata.json, imagetools-raw.json, imagetools-format.json.
# Needs the lab up (lab/lab.sh up): node1, node3, the registry, the BuildKit image.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
eval "$("$ROOT/lab/lab.sh" env)"
DATA=$ROOT/tests/unit/data/buildx
VERSIONS=("$@")
((${#VERSIONS[@]})) || VERSIONS=(0.13 0.29)

log() { printf 'record: %s\n' "$*" >&2; }
CLEANUP=(true) WORK=
# The builder this run made goes, with its BuildKit containers, whatever happened.
cleanup() { "${CLEANUP[@]}" >/dev/null 2>&1 || true; [[ -z $WORK ]] || rm -rf "$WORK"; CLEANUP=(true) WORK=; }
trap cleanup EXIT

# plugin_dir VERSION: the folder a config must name for VERSION ("" for the system's).
plugin_dir() {
    case $1 in
        0.13) printf '' ;;
        0.29) printf '%s' "$FARM_LAB_BUILDX_029_DIR" ;;
        *) printf 'record: unknown version %s (0.13 or 0.29)\n' "$1" >&2; exit 2 ;;
    esac
}

record() {
    local v=$1 dir; dir=$(plugin_dir "$v")
    local out=$DATA/$v work; work=$(mktemp -d)
    local cfg=$work/config builder=record-${v//./-}
    mkdir -p "$cfg" "$out"
    if [[ -n $dir ]]; then printf '{"cliPluginsExtraDirs": ["%s"]}\n' "$dir" >"$cfg/config.json"; fi
    local dx=(docker --config "$cfg")
    "${dx[@]}" buildx version >"$out/version.txt"
    [[ $(awk '{print $2}' "$out/version.txt") == "$v".* ]] || { log "asked $v, got $(cat "$out/version.txt")"; exit 1; }
    log "$v: $(cat "$out/version.txt")"

    # bake --print, in a copy of the bake folder with a throwaway ssh key (bake reads it)
    cp -r "$DATA/bake" "$work/bake"
    ssh-keygen -q -t ed25519 -N '' -C record -f "$work/bake/id_record"
    (cd "$work/bake" && "${dx[@]}" buildx bake --print carried refused 2>/dev/null) >"$out/bake-print.json"

    # a two-node builder like farm's: node1 (linux/amd64), node3 (linux/arm64)
    "${dx[@]}" context create rec-node1 --docker "host=$FARM_LAB_NODE1" >/dev/null
    "${dx[@]}" context create rec-node3 --docker "host=$FARM_LAB_NODE3" >/dev/null
    CLEANUP=("${dx[@]}" buildx rm --force "$builder")
    WORK=$work
    local opts=(--driver docker-container --driver-opt "image=$FARM_LAB_BUILDKIT_IMAGE" --driver-opt network=host)
    "${dx[@]}" buildx create --name "$builder" "${opts[@]}" --node "${builder}0" --platform linux/amd64 rec-node1 >/dev/null
    "${dx[@]}" buildx create --append --name "$builder" "${opts[@]}" --node "${builder}1" --platform linux/arm64 rec-node3 >/dev/null
    "${dx[@]}" buildx inspect --bootstrap "$builder" >/dev/null
    "${dx[@]}" buildx inspect "$builder" >"$out/inspect.txt"
    cp "$cfg/buildx/instances/$builder" "$out/instance.json"
    "${dx[@]}" buildx ls >"$out/ls.txt"
    rm -f "$out/ls.json"
    if "${dx[@]}" buildx ls --help 2>&1 | grep -q -- '--format'; then "${dx[@]}" buildx ls --format json >"$out/ls.json"; fi

    # a build as farm runs it: two platforms on two nodes, pushed by digest, provenance on
    local repo=$FARM_LAB_REGISTRY/record-buildx-${v//./-} ctx=$work/ctx
    mkdir -p "$ctx"
    printf 'FROM %s\nCOPY hello /hello\n' "$FARM_LAB_BASE" >"$ctx/Dockerfile"
    printf 'recorded with buildx %s\n' "$v" >"$ctx/hello"
    "${dx[@]}" buildx build --builder "$builder" --progress quiet --platform linux/amd64,linux/arm64 --provenance=true \
        --output "type=image,name=$repo:staging,push-by-digest=true,name-canonical=true,push=true" \
        --metadata-file "$out/metadata.json" "$ctx" >/dev/null
    # the same through bake, as `farm build` runs several targets at once
    printf '{"target": {"rec": {"context": ".", "platforms": ["linux/amd64", "linux/arm64"], "output": ["type=image,name=%s,push-by-digest=true,name-canonical=true,push=true"]}}}\n' \
        "$repo" >"$ctx/bake.json"
    (cd "$ctx" && "${dx[@]}" buildx bake --builder "$builder" --progress quiet --file bake.json \
        --metadata-file "$out/bake-metadata.json" rec >/dev/null)
    local digest; digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$out/metadata.json")
    "${dx[@]}" buildx imagetools inspect --raw "$repo@$digest" >"$out/imagetools-raw.json"
    "${dx[@]}" buildx imagetools inspect --format '{{json .}}' "$repo@$digest" >"$out/imagetools-format.json"
    log "$v: wrote $(cd "$out" && echo *)"
}

for v in "${VERSIONS[@]}"; do record "$v"; cleanup; done
