#!/usr/bin/env bash
# The lab: a real build farm of three engines on this one machine (see docs/lab.md).
#
#   lab/lab.sh install        packages, QEMU, BuildKit binaries, buildx 0.29 beside the system's (cached, machine-wide)
#   lab/lab.sh up [PART]      start node1, node2, node3, sshd, registries, images (idempotent)
#   lab/lab.sh down [PART]    stop what the lab started, by pid file; remove its mounts/bridge
#   lab/lab.sh status         one line per part; exit 0 when all are up
#   lab/lab.sh env            print the shell exports tests need (same as lab/env.sh)
#
# PART is one of: binfmt node1 node2 node3 registry auth-registry sshd images
#   (registry = both open registries; auth-registry = the one on 127.0.0.1:5001 that wants
#   a password; images = the BuildKit image and the base image)
#
# Machine-wide, shared by every checkout: runtime state in $LAB_STATE, downloads and
# builds in $LAB_CACHE. A flock keeps two concurrent calls from interleaving.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_STATE=${FARM_LAB_STATE:-/var/lib/buildkit-farm-lab}
LAB_CACHE=${FARM_LAB_CACHE:-/var/cache/buildkit-farm-lab}
LAB_LOCK=${FARM_LAB_LOCK:-/run/buildkit-farm-lab.lock}

NODE1_SOCK=/var/run/docker.sock
NODE1_HOST=unix://$NODE1_SOCK
NODE2_DIR=$LAB_STATE/node2
NODE2_SOCK=$NODE2_DIR/docker.sock
NODE2_HOST=unix://$NODE2_SOCK
NODE2_BRIDGE=farm0
# node2's engine also listens on tcp+TLS (client certificates required): the third way a
# farm reaches a node, beside the unix socket and ssh.
NODE2_TCP_PORT=2376
NODE2_TCP=tcp://127.0.0.1:$NODE2_TCP_PORT
NODE2_BRIDGE_CIDR=10.213.0.1/24
# node3: a third dockerd like node2 (own data-root, exec-root, socket, bridge), so node
# pools can span distinct engines. Reached over its unix socket.
NODE3_DIR=$LAB_STATE/node3
NODE3_SOCK=$NODE3_DIR/docker.sock
NODE3_HOST=unix://$NODE3_SOCK
NODE3_BRIDGE=farm1
NODE3_BRIDGE_CIDR=10.214.0.1/24
SSH_PORT=2222
SSH_USER=farm
SSH_DIR=$LAB_STATE/ssh
SSH_DROPIN=/etc/ssh/ssh_config.d/buildkit-farm-lab.conf
REGISTRY=127.0.0.1:5000
TLS_REGISTRY=127.0.0.1:5443
TLS_DIR=$LAB_STATE/tls
# A registry that wants a password (htpasswd, bcrypt), plain http like the first one.
AUTH_REGISTRY=127.0.0.1:5001
AUTH_DIR=$LAB_STATE/auth-registry
AUTH_USER=farm-ci
BUILDKIT_TAG=moby/buildkit:buildx-stable-1
BUILDKIT_LAB_REF=$REGISTRY/buildkit:lab
LAB_LABEL=org.buildkit-farm.lab
BASE_REF=$REGISTRY/base:latest
GO_VERSION=1.24

# Debian's mirror, as this machine's apt is configured (trixie has docker.io and buildx).
DEBIAN_URI=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
DEBIAN_URI=${DEBIAN_URI:-http://deb.debian.org/debian}
TRIXIE_APT_AMD64=(-o Dir::Etc::SourceList="$LAB_CACHE/apt/trixie.list" -o Dir::Etc::SourceParts=/dev/null
                  -o Dir::State::Lists="$LAB_CACHE/apt/lists" -o Dir::Cache="$LAB_CACHE/apt/cache"
                  -o APT::Sandbox::User=root -o APT::Architectures::=amd64)
# The foreign indexes are only for busybox-static:arm64/armhf; the solver is twice as fast without them.
TRIXIE_APT=("${TRIXIE_APT_AMD64[@]}" -o APT::Architectures::=arm64 -o APT::Architectures::=armhf)

BOOKWORM_PKGS=(qemu-user-static binfmt-support openssh-server openssh-client
               ca-certificates openssl iproute2 curl apache2-utils)
# The engine only where none is installed (a Docker CE machine keeps its own), with its
# bookworm dependencies: trixie's runc and tini need a newer libc.
ENGINE_PKGS=(runc tini iptables)
TRIXIE_ENGINE_PKGS=(docker.io docker-cli containerd)
TRIXIE_PKGS=(docker-buildx docker-registry)
# Beyond docker-dev's own dependencies, what buildkitd and buildctl import (LAB.md).
GO_PKGS=(golang-$GO_VERSION-go golang-github-docker-docker-dev
         golang-github-agext-levenshtein-dev golang-github-containerd-nydus-snapshotter-dev
         golang-github-containerd-stargz-snapshotter-dev golang-github-coreos-go-systemd-dev
         golang-github-gofrs-flock-dev golang-github-google-shlex-dev golang-github-pkg-profile-dev
         golang-github-spdx-tools-golang-dev golang-github-mitchellh-hashstructure-v2-dev
         golang-github-tonistiigi-vt100-dev)
GO_SKIP_RE='^golang-github-aws-aws-sdk-go-v2-dev$'
BUILDKIT_SRC=usr/share/gocode/src/github.com/moby/buildkit
# A newer buildx beside the system's 0.13.1 (docs/lab.md): sid's, unpacked into a folder of its
# own that a docker config names in "cliPluginsExtraDirs". Pinned: tests ask for this version.
BUILDX_NEW=0.29
BUILDX_NEW_DEB=0.29.1+ds1-4
BUILDX_NEW_DIR=$LAB_CACHE/buildx-$BUILDX_NEW
SID_APT=(-o Dir::Etc::SourceList="$LAB_CACHE/apt/sid.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$LAB_CACHE/apt/sid-lists" -o Dir::Cache="$LAB_CACHE/apt/sid-cache"
         -o APT::Sandbox::User=root -o APT::Architectures::=amd64)

# ---------------------------------------------------------------- output and timing
log() { printf '%s\n' "lab: $*"; }
die() { printf '%s\n' "lab: error: $*" >&2; exit 1; }
bad_usage() { printf "%s\n" "lab: error: $*" >&2; exit 2; }
# step NAME FUNC [ARGS...]: run FUNC, print its duration.
step() {
    local name=$1; shift
    local t0=$EPOCHREALTIME
    log "[$name] ..."
    "$@"
    log "[$name] done in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f s", b - a}')"
}
with_lock() {
    mkdir -p "$(dirname "$LAB_LOCK")"
    exec 9>"$LAB_LOCK"
    if ! flock -n 9; then
        log "another lab.sh is running; waiting for its lock ($LAB_LOCK)"
        flock 9
    fi
}
# start_daemon LOG CMD...: detach CMD from this shell (own session, no lock fd, no stdin).
start_daemon() {
    local logfile=$1; shift
    setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
    LAST_PID=$!
}
# wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds.
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}
# pid_alive FILE: the pid in FILE runs, and is the lab's process, not a reuse of its number.
# The pid files live in $LAB_STATE (under /var/lib), which survives a reboot: a file
# written before the last boot is stale, and the process must run one of the lab's
# daemons (its /proc/PID/exe), so a reused pid is never sent TERM, let alone KILL.
LAB_EXES=(dockerd sshd docker-registry registry)
pid_alive() {
    [[ -s $1 ]] || return 1
    local pid; pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    pid_file_since_boot "$1" && pid_is_lab_exe "$pid"
}
pid_file_since_boot() {
    local btime; btime=$(awk '$1 == "btime" {print $2}' /proc/stat)
    [[ -z $btime ]] || (($(stat -c %Y "$1") >= btime))
}
pid_is_lab_exe() {
    local exe e; exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}   # an upgraded binary still running
    for e in "${LAB_EXES[@]}"; do [[ ${exe##*/} == "$e" ]] && return 0; done
    return 1
}
# stop_pidfile FILE NAME [TIMEOUT]: TERM the process named in FILE, KILL after TIMEOUT.
stop_pidfile() {
    local file=$1 name=$2 timeout=${3:-20}
    if ! pid_alive "$file"; then
        [[ -s $file ]] && log "$name: pid file $file names no running lab process (stale); removed"
        rm -f "$file"
        log "$name: not running"
        return 0
    fi
    local pid; pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name: still running after ${timeout}s, killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$file"
    log "$name: stopped (pid $pid)"
}
# socket_listened PATH: some process listens on the unix socket PATH.
socket_listened() { [[ -S $1 ]] && ss -Hxl 2>/dev/null | awk -v s="$1" '$2 == "LISTEN" && $5 == s {f = 1} END {exit !f}'; }
docker1() { docker -H "$NODE1_HOST" "$@"; }
docker2() { docker -H "$NODE2_HOST" "$@"; }
docker3() { docker -H "$NODE3_HOST" "$@"; }
node1_answers() { timeout 10 docker -H "$NODE1_HOST" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
# socket_answers SOCK: a dockerd answers on that unix socket.
socket_answers() { [[ -S $1 ]] && timeout 10 docker -H "unix://$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
node2_answers() { socket_answers "$NODE2_SOCK"; }
node3_answers() { socket_answers "$NODE3_SOCK"; }
node2_tcp_ok() {
    timeout 10 docker -H "$NODE2_TCP" --tlsverify --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/client.pem" \
        --tlskey "$TLS_DIR/client.key" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# ---------------------------------------------------------------- install
with_policy_rc_d() {
    # Package scripts must not start services: the lab starts its own.
    local had=0
    [[ -e /usr/sbin/policy-rc.d ]] && had=1
    if ((had == 0)); then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi
    local rc=0
    "$@" || rc=$?
    if ((had == 0)); then rm -f /usr/sbin/policy-rc.d; fi
    return $rc
}
missing_debs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || printf '%s\n' "$p"
    done
}
install_curl() {
    apt-get update -qq || log "apt-get update reported errors; carrying on"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
}
install_bookworm() {
    local missing; missing=$(missing_debs "${BOOKWORM_PKGS[@]}")
    if [[ -z $missing ]]; then log "bookworm packages already installed"; return 0; fi
    log "installing:" $missing
    apt-get update -qq || log "apt-get update reported errors; carrying on"
    with_policy_rc_d env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
trixie_lists() {
    mkdir -p "$LAB_CACHE/apt/lists/partial" "$LAB_CACHE/apt/cache/archives/partial"
    local list="$LAB_CACHE/apt/trixie.list"
    local want="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_URI trixie main"
    if [[ -f $list && $(cat "$list") == "$want" ]] && compgen -G "$LAB_CACHE/apt/lists/*trixie_main_binary-amd64_Packages*" >/dev/null; then
        log "trixie index cached"
        return 0
    fi
    printf '%s\n' "$want" >"$list"
    # A foreign-architecture index may fail while the mirror syncs; amd64 is what matters.
    apt-get "${TRIXIE_APT[@]}" update -qq || log "trixie index update reported errors; carrying on"
    compgen -G "$LAB_CACHE/apt/lists/*trixie_main_binary-amd64_Packages*" >/dev/null || die "no trixie amd64 index"
}
# fetch_one URI FILE HASH: one .deb, checked against apt's hash (run by xargs, in parallel).
fetch_one() {
    local uri=$1 file=$2 hash=$3
    curl -sfL --retry 3 -o "$file.part" "$uri" || { echo "lab: error: download failed: $uri" >&2; return 1; }
    local sum
    case ${hash%%:*} in
        SHA256) sum=$(sha256sum "$file.part") ;;
        SHA512) sum=$(sha512sum "$file.part") ;;
        *)      sum=$(md5sum "$file.part") ;;
    esac
    [[ ${sum%% *} == "${hash#*:}" ]] || { echo "lab: error: checksum mismatch: $uri" >&2; rm -f "$file.part"; return 1; }
    mv "$file.part" "$file"
}
# fetch_uris DIR URIFILE: download what apt's --print-uris listed and DIR lacks, 8 at a time.
# (One apt-get call per package list: apt's startup, not the network, was the slow part.)
fetch_uris() {
    local dir=$1 uris=$2
    mkdir -p "$dir"
    export -f fetch_one
    local uri name size hash n=0
    while read -r uri name size hash; do
        uri=${uri//\'/}
        [[ -f $dir/$name && $(stat -c %s "$dir/$name") == "$size" ]] && continue
        printf '%s\n%s\n%s\n' "$uri" "$dir/$name" "$hash"
        n=$((n + 1))
    done <"$uris" >"$uris.todo"
    if ((n == 0)); then log "$(basename "$dir"): $(wc -l <"$uris") debs cached"; return 0; fi
    log "$(basename "$dir"): downloading $n debs"
    xargs -r -d '\n' -n 3 -P 8 bash -c 'fetch_one "$@"' _ <"$uris.todo"
    rm -f "$uris.todo"
}
# download_to DIR PKG[:ARCH]...: fetch the packages' .debs into DIR (skips those it has).
download_to() {
    local dir=$1; shift
    mkdir -p "$dir"
    local need=() p
    for p in "$@"; do
        local name=${p%%:*} arch=amd64
        [[ $p == *:* ]] && arch=${p#*:}
        compgen -G "$dir/${name}_*_${arch}.deb" >/dev/null || compgen -G "$dir/${name}_*_all.deb" >/dev/null || need+=("$p")
    done
    if ((${#need[@]} == 0)); then log "$(basename "$dir"): $# debs cached"; return 0; fi
    local opts=("${TRIXIE_APT_AMD64[@]}")
    [[ " ${need[*]}" == *:* ]] && opts=("${TRIXIE_APT[@]}")
    apt-get "${opts[@]}" download --print-uris -qq "${need[@]}" >"$dir/uris.txt"
    fetch_uris "$dir" "$dir/uris.txt"
}
install_trixie() {
    local want=() p
    # Only what this machine lacks: an existing engine, CLI plugin or registry is kept.
    if command -v dockerd >/dev/null && ! dpkg-query -W docker.io >/dev/null 2>&1; then
        log "dockerd already installed ($(command -v dockerd)); not installing docker.io"
    else
        want+=("${TRIXIE_ENGINE_PKGS[@]}")
    fi
    if ! docker buildx version >/dev/null 2>&1 || dpkg-query -W docker-buildx >/dev/null 2>&1; then want+=(docker-buildx); fi
    if ! command -v docker-registry >/dev/null || dpkg-query -W docker-registry >/dev/null 2>&1; then want+=(docker-registry); fi
    ((${#want[@]})) || return 0
    download_to "$LAB_CACHE/debs/docker" "${want[@]}"
    local missing; missing=$(missing_debs "${want[@]}")
    if [[ -z $missing ]]; then log "docker packages already installed"; return 0; fi
    log "installing:" $missing
    local args=()
    for p in $missing; do args+=("$LAB_CACHE"/debs/docker/"${p}"_*.deb); done
    if [[ " $missing " == *" docker.io "* ]]; then
        args+=("${ENGINE_PKGS[@]}")
        apt-cache show runc >/dev/null 2>&1 || apt-get update -qq || log "apt-get update reported errors; carrying on"
    fi
    with_policy_rc_d env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${args[@]}" >/dev/null
}
install_cli_plugin() {
    # The 28.x client in /usr/local/bin looks for plugins here; docker-buildx puts it there too.
    docker buildx version || die "the docker CLI finds no buildx plugin (looked in /usr/libexec/docker/cli-plugins and the other plugin folders)"
}
# ---------------------------------------------------------------- install: buildx 0.29 from sid
# Its own apt list, index and cache (the trixie ones stay as they are); only the plugin binary
# is kept, in $BUILDX_NEW_DIR. The system's buildx is not touched.
buildx_new_ok() { [[ -x $BUILDX_NEW_DIR/docker-buildx && $(cat "$BUILDX_NEW_DIR/version" 2>/dev/null) == "$BUILDX_NEW_DEB" ]]; }
install_buildx_new() {
    if buildx_new_ok; then log "buildx $BUILDX_NEW_DEB cached in $BUILDX_NEW_DIR"; return 0; fi
    mkdir -p "$LAB_CACHE/apt/sid-lists/partial" "$LAB_CACHE/apt/sid-cache/archives/partial" "$LAB_CACHE/debs/sid"
    printf '%s\n' "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_URI sid main" >"$LAB_CACHE/apt/sid.list"
    local deb="$LAB_CACHE/debs/sid/docker-buildx_${BUILDX_NEW_DEB//:/%3a}_amd64.deb"
    if [[ ! -s $deb ]]; then
        apt-get "${SID_APT[@]}" update -qq || log "sid index update reported errors; carrying on"
        apt-get "${SID_APT[@]}" download --print-uris -qq "docker-buildx=$BUILDX_NEW_DEB" >"$LAB_CACHE/debs/sid/uris.txt" \
            || die "sid has no docker-buildx $BUILDX_NEW_DEB (apt-cache ${SID_APT[*]} policy docker-buildx shows what it has)"
        fetch_uris "$LAB_CACHE/debs/sid" "$LAB_CACHE/debs/sid/uris.txt"
    fi
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp"
    mkdir -p "$BUILDX_NEW_DIR"
    install -m 0755 "$tmp/usr/libexec/docker/cli-plugins/docker-buildx" "$BUILDX_NEW_DIR/docker-buildx"
    rm -rf "$tmp"
    printf '%s\n' "$BUILDX_NEW_DEB" >"$BUILDX_NEW_DIR/version"
    # Prove it: a throwaway config that names the folder must report the new version.
    local cfg; cfg=$(mktemp -d)
    printf '{"cliPluginsExtraDirs": ["%s"]}\n' "$BUILDX_NEW_DIR" >"$cfg/config.json"
    local v; v=$(docker --config "$cfg" buildx version 2>&1) || true
    rm -rf "$cfg"
    [[ $v == *" $BUILDX_NEW."* ]] || die "buildx in $BUILDX_NEW_DIR reports '$v', not $BUILDX_NEW"
    log "buildx: $v (in $BUILDX_NEW_DIR; the system's stays $(docker buildx version 2>/dev/null | awk '{print $2}'))"
}

install_binfmt() {
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    local h
    for h in qemu-aarch64 qemu-arm; do
        if ! grep -q '^enabled' "/proc/sys/fs/binfmt_misc/$h" 2>/dev/null; then
            update-binfmts --enable "$h"
        fi
        grep -q '^flags: .*F' "/proc/sys/fs/binfmt_misc/$h" || die "binfmt $h lacks the F flag"
    done
    log "binfmt: qemu-aarch64, qemu-arm enabled"
}
install_busybox() {
    download_to "$LAB_CACHE/debs/busybox" busybox-static:amd64 busybox-static:arm64 busybox-static:armhf
    local arch
    for arch in amd64 arm64 armhf; do
        local root="$LAB_CACHE/base/$arch/rootfs"
        [[ -x $root/bin/busybox ]] && continue
        local tmp; tmp=$(mktemp -d)
        dpkg-deb -x "$LAB_CACHE"/debs/busybox/busybox-static_*_"$arch".deb "$tmp"
        rm -rf "$root"; mkdir -p "$root/bin" "$root/tmp" "$root/etc"
        chmod 1777 "$root/tmp"
        # trixie ships it in /usr/bin, bookworm in /bin.
        local bb; bb=$(compgen -G "$tmp/usr/bin/busybox" || compgen -G "$tmp/bin/busybox") || die "no busybox in the $arch deb"
        cp "$bb" "$root/bin/busybox"
        # The amd64 busybox lists its applets; every arch's build has the same set.
        local a
        for a in $("$LAB_CACHE"/base/amd64/rootfs/bin/busybox --list 2>/dev/null || "$bb" --list); do
            [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
        done
        printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
        rm -rf "$tmp"
    done
    log "busybox rootfs ready for amd64, arm64, armhf"
}
go_package_uris() {
    # apt's solver, against an empty dpkg status, picks one consistent set (walking the
    # dependencies by hand pulls two protobuf versions) and lists their URIs: cached.
    local key; key=$(printf '%s\n' "${GO_PKGS[@]}" "$GO_SKIP_RE" | sha256sum | cut -c1-16)
    GO_URIS="$LAB_CACHE/go/uris-$key.txt"
    GO_PKG_LIST="$LAB_CACHE/go/pkgs-$key.txt"
    if [[ ! -s $GO_URIS ]]; then
        mkdir -p "$LAB_CACHE/go/empty-archives/partial"
        : >"$LAB_CACHE/go/empty-status"
        apt-get "${TRIXIE_APT_AMD64[@]}" -o Dir::State::status="$LAB_CACHE/go/empty-status" \
            -o Dir::Cache::archives="$LAB_CACHE/go/empty-archives" -qq --print-uris install "${GO_PKGS[@]}" \
            | awk '$2 ~ /^golang-/' | awk -v skip="$GO_SKIP_RE" '{split($2, f, "_"); if (f[1] !~ skip) print}' >"$GO_URIS.tmp"
        [[ -s $GO_URIS.tmp ]] || die "apt found no golang packages for the BuildKit build"
        mv "$GO_URIS.tmp" "$GO_URIS"
    fi
    awk '{split($2, f, "_"); print f[1]}' "$GO_URIS" | sort -u >"$GO_PKG_LIST"
}
extract_go_root() {
    local root=$1
    log "extracting $(wc -l <"$GO_URIS") packages into $root"
    rm -rf "$root"; mkdir -p "$root"
    awk -v d="$LAB_CACHE/debs/go" '{print d "/" $2}' "$GO_URIS" | xargs -r -P 3 -I{} dpkg-deb -x {} "$root"
}
install_go_root() {
    step go-solver go_package_uris
    local root="$LAB_CACHE/go/root" stamp="$LAB_CACHE/go/root.stamp"
    if [[ -f $stamp && $(cat "$stamp") == "$(sha256sum <"$GO_PKG_LIST")" ]]; then
        log "Go root cached ($(wc -l <"$GO_PKG_LIST") packages)"
        return 0
    fi
    step go-download fetch_uris "$LAB_CACHE/debs/go" "$GO_URIS"
    step go-extract extract_go_root "$root"
    [[ -d $root/$BUILDKIT_SRC/cmd/buildkitd ]] || die "BuildKit sources missing from $root/$BUILDKIT_SRC"
    sha256sum <"$GO_PKG_LIST" >"$stamp"
}
make_overlay() {
    # GOPATH mode takes a package from the first root holding its directory: the overlay
    # comes first, with BuildKit's own tree copied in so three cache backends can be swapped.
    local root="$LAB_CACHE/go/root" ov="$LAB_CACHE/go/overlay"
    local src="$ov/src"
    rm -rf "$ov"; mkdir -p "$src/github.com/moby" "$src/github.com/coreos/go-systemd" \
        "$src/github.com/tonistiigi" "$src/github.com/package-url" "$src/github.com/containerd"
    cp -a "$root/$BUILDKIT_SRC" "$src/github.com/moby/buildkit"
    # Debian ships go-systemd v22 without the /v22 suffix.
    ln -s "$root/usr/share/gocode/src/github.com/coreos/go-systemd" "$src/github.com/coreos/go-systemd/v22"
    mkdir -p "$src/github.com/tonistiigi/go-archvariant" "$src/github.com/package-url/packageurl-go" \
        "$src/github.com/containerd/fuse-overlayfs-snapshotter"
    cp "$LAB_DIR/overlay/archvariant/"*.go "$src/github.com/tonistiigi/go-archvariant/"
    cp "$LAB_DIR/overlay/packageurl/"*.go "$src/github.com/package-url/packageurl-go/"
    cp "$LAB_DIR/overlay/fuseoverlayfs/"*.go "$src/github.com/containerd/fuse-overlayfs-snapshotter/"
    local pkg
    for pkg in s3 gha azblob; do
        local dir="$src/github.com/moby/buildkit/cache/remotecache/$pkg"
        rm -rf "$dir"; mkdir -p "$dir"
        sed "s/@PKG@/$pkg/g" "$LAB_DIR/overlay/remotecache/remotecache.go.in" >"$dir/$pkg.go"
    done
}
build_buildkit() {
    local bin="$LAB_CACHE/bin" root="$LAB_CACHE/go/root"
    # The key ignores how the build is run, only what goes in: the Go root and our overlay.
    local key; key=$( (cat "$LAB_CACHE/go/root.stamp"; cat "$LAB_DIR"/overlay/*/*; declare -f make_overlay) | sha256sum | cut -c1-16)
    if [[ -x $bin/buildkitd && -x $bin/buildctl && -f $bin/stamp && $(cat "$bin/stamp") == "$key" ]]; then
        log "buildkitd and buildctl cached ($("$bin/buildkitd" --version 2>/dev/null | awk '{print $3}'))"
        return 0
    fi
    make_overlay
    mkdir -p "$bin"
    local goenv=(GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOTOOLCHAIN=local GOFLAGS=
                 GOPATH="$LAB_CACHE/go/overlay:$root/usr/share/gocode" GOROOT="$root/usr/lib/go-$GO_VERSION"
                 GOCACHE="$LAB_CACHE/go/gocache" HOME="$LAB_CACHE/go")
    local flags=(-trimpath -tags "osusergo netgo static_build seccomp"
                 -ldflags "-s -w -X github.com/moby/buildkit/version.Version=v0.13-debian-lab -X github.com/moby/buildkit/version.Revision=lab")
    # One `go build` for both: their shared packages compile once, in parallel.
    log "go build buildkitd buildctl"
    rm -rf "$bin/new"; mkdir -p "$bin/new"
    (cd "$LAB_CACHE/go/overlay/src/github.com/moby/buildkit" &&
        env "${goenv[@]}" "$root/usr/lib/go-$GO_VERSION/bin/go" build "${flags[@]}" -o "$bin/new/" ./cmd/buildkitd ./cmd/buildctl)
    mv "$bin/new/buildkitd" "$bin/new/buildctl" "$bin/"
    rmdir "$bin/new"
    printf '%s\n' "$key" >"$bin/stamp"
}
buildkit_rootfs() {
    # The image for buildx's docker-container driver: FROM scratch, our binaries, Debian's runc.
    local dir="$LAB_CACHE/buildkit-image" bin="$LAB_CACHE/bin"
    local runc; runc=$(command -v runc) || die "runc missing"
    local key; key=$( (cat "$bin/stamp"; sha256sum "$runc" "$LAB_CACHE/base/amd64/rootfs/bin/busybox"; declare -f buildkit_rootfs) | sha256sum | cut -c1-16)
    if [[ -f $dir/key && $(cat "$dir/key") == "$key" ]]; then log "image rootfs cached ($key)"; return 0; fi
    local root="$dir/rootfs"
    rm -rf "$dir"; mkdir -p "$root/usr/bin" "$root/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/buildkit" "$root/run"
    chmod 1777 "$root/tmp"
    cp "$bin/buildkitd" "$bin/buildctl" "$root/usr/bin/"
    cp -L "$runc" "$root/usr/bin/buildkit-runc"
    ln -s buildkit-runc "$root/usr/bin/runc"
    local lib
    for lib in $(ldd "$runc" 2>/dev/null | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    cp "$LAB_CACHE/base/amd64/rootfs/bin/busybox" "$root/bin/busybox"
    local a
    for a in sh ls cat mkdir mount umount ps rm cp mv ln env; do ln -s busybox "$root/bin/$a"; done
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
    cat >"$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin
LABEL $LAB_LABEL=$key
VOLUME /var/lib/buildkit
ENTRYPOINT ["buildkitd"]
DOCKERFILE
    printf '%s\n' "$key" >"$dir/key"
}

cmd_install() {
    command -v curl >/dev/null || step curl install_curl
    step trixie-index trixie_lists
    # The Go chain (solver, 400 debs, extract, build) is the long pole: run it beside the
    # packages and busybox, then wait for it.
    local golog="$LAB_CACHE/go-chain.log"
    (step go-root install_go_root && step buildkit-binaries build_buildkit) >"$golog" 2>&1 9>&- &
    local gopid=$!
    step bookworm-packages install_bookworm
    step docker-packages install_trixie
    step buildx-plugin install_cli_plugin
    step buildx-$BUILDX_NEW install_buildx_new
    step busybox install_busybox
    local rc=0
    wait "$gopid" || rc=$?
    sed 's/^/  /' "$golog"
    ((rc == 0)) || die "BuildKit build failed (log above, $golog)"
    step buildkit-rootfs buildkit_rootfs
}

# ---------------------------------------------------------------- up: parts
up_binfmt() { install_binfmt; }
binfmt_ok() {
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null &&
        grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-arm 2>/dev/null
}

up_node1() {
    if node1_answers; then
        if pid_alive "$LAB_STATE/node1/dockerd.pid"; then log "node1: lab's dockerd already up"
        else log "node1: a dockerd already answers on $NODE1_SOCK; using it (the lab will never stop it)"; fi
        return 0
    fi
    local dir="$LAB_STATE/node1"
    if pid_alive "$dir/dockerd.pid"; then
        log "node1: the lab's dockerd (pid $(cat "$dir/dockerd.pid")) runs but does not answer yet; waiting"
        wait_for 60 node1 node1_answers || die "node1 dockerd runs but does not answer (log: $dir/dockerd.log)"
        return 0
    fi
    command -v dockerd >/dev/null || die "dockerd missing: run lab/lab.sh install"
    mkdir -p "$dir"
    # A socket some process still listens on is a daemon that is slow, not dead: never delete it.
    if socket_listened "$NODE1_SOCK"; then
        wait_for 60 node1 node1_answers && { log "node1: the dockerd on $NODE1_SOCK answers now; using it"; return 0; }
        die "a process listens on $NODE1_SOCK but does not answer; check that dockerd (the lab leaves it alone)"
    fi
    [[ -S $NODE1_SOCK ]] && rm -f "$NODE1_SOCK"   # stale socket of a dead daemon
    # Remember whether we caused docker0, so down removes only a bridge of ours (the mark
    # survives a lab whose processes were killed without `down`).
    # The lab makes docker0 itself (dockerd's default address), so node1 never depends on
    # dockerd re-creating it. (NB: a second dockerd with default-address-pools deletes
    # "docker0" when it restarts; node2's config must never set them.)
    if ! ip link show docker0 >/dev/null 2>&1; then
        : >"$dir/docker0.ours"
        ip link add docker0 type bridge
        ip addr add 172.17.0.1/16 dev docker0
        ip link set docker0 up
    fi
    umount_under /var/run/docker
    cat >"$dir/daemon.json" <<JSON
{
  "hosts": ["$NODE1_HOST"],
  "pidfile": "$dir/dockerd.pid",
  "group": "docker",
  "iptables": false,
  "ip6tables": false,
  "ip-masq": false,
  "shutdown-timeout": 5
}
JSON
    start_daemon "$dir/dockerd.log" dockerd --config-file "$dir/daemon.json"
    wait_for 60 node1 node1_answers || { tail -20 "$dir/dockerd.log" >&2; die "node1 dockerd did not answer within 60 s"; }
    log "node1: dockerd started (pid $(cat "$dir/dockerd.pid"), log $dir/dockerd.log)"
}

# start_engine NAME DIR BRIDGE CIDR HOSTS_JSON [EXTRA_JSON]: a second (third...) dockerd of
# its own: data-root, exec-root, pidfile and socket under DIR, its own bridge, iptables off
# (it must not fight node1), no default-address-pools (they delete node1's docker0).
start_engine() {
    local name=$1 dir=$2 bridge=$3 cidr=$4 hosts=$5 extra=${6:-}
    mkdir -p "$dir"
    chmod 755 "$LAB_STATE" "$dir"   # user farm reaches the socket through here
    if ! ip link show "$bridge" >/dev/null 2>&1; then
        ip link add "$bridge" type bridge
        ip addr add "$cidr" dev "$bridge"
    fi
    ip link set "$bridge" up
    cat >"$dir/daemon.json" <<JSON
{
  "hosts": [$hosts],
$extra  "data-root": "$dir/data",
  "exec-root": "$dir/exec",
  "pidfile": "$dir/dockerd.pid",
  "group": "docker",
  "bridge": "$bridge",
  "iptables": false,
  "ip6tables": false,
  "ip-masq": false,
  "shutdown-timeout": 5
}
JSON
    rm -f "$dir/docker.sock"
    umount_under "$dir"   # left by an engine that was killed without `down`
    start_daemon "$dir/dockerd.log" dockerd --config-file "$dir/daemon.json"
    wait_for 60 "$name" socket_answers "$dir/docker.sock" || { tail -20 "$dir/dockerd.log" >&2; die "$name dockerd did not answer within 60 s"; }
}
# engine_running NAME DIR: true when the engine is up already (waits for one that is starting).
engine_running() {
    local name=$1 dir=$2
    socket_answers "$dir/docker.sock" && return 0
    pid_alive "$dir/dockerd.pid" || return 1
    log "$name: dockerd (pid $(cat "$dir/dockerd.pid")) runs but does not answer yet; waiting"
    wait_for 60 "$name" socket_answers "$dir/docker.sock" || die "$name dockerd runs but does not answer (log: $dir/dockerd.log)"
}
# stop_engine NAME DIR BRIDGE: stop it by pid file, unmount what it left, remove its bridge.
stop_engine() {
    local name=$1 dir=$2 bridge=$3
    stop_pidfile "$dir/dockerd.pid" "$name" 40
    umount_under "$dir"   # netns under exec-root, the data-root's own private mount
    rm -f "$dir/docker.sock"
    if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge"; log "$name: bridge $bridge removed"; fi
}

up_node2() {
    if node2_answers; then
        node2_tcp_ok || log "node2: up, but not on $NODE2_TCP (started by an older lab): lab/lab.sh down node2, then up"
        log "node2: already up"; return 0
    fi
    engine_running node2 "$NODE2_DIR" && return 0
    ensure_tls
    start_engine node2 "$NODE2_DIR" "$NODE2_BRIDGE" "$NODE2_BRIDGE_CIDR" "\"$NODE2_HOST\", \"$NODE2_TCP\"" \
"  \"tlsverify\": true,
  \"tlscacert\": \"$TLS_DIR/ca.pem\",
  \"tlscert\": \"$TLS_DIR/server.pem\",
  \"tlskey\": \"$TLS_DIR/server.key\",
"
    wait_for 30 node2-tcp node2_tcp_ok || { tail -20 "$NODE2_DIR/dockerd.log" >&2; die "node2 dockerd does not answer on $NODE2_TCP"; }
    log "node2: dockerd started (pid $(cat "$NODE2_DIR/dockerd.pid"), $NODE2_HOST and $NODE2_TCP (TLS), bridge $NODE2_BRIDGE)"
}

up_node3() {
    if node3_answers; then log "node3: already up"
    elif ! engine_running node3 "$NODE3_DIR"; then
        start_engine node3 "$NODE3_DIR" "$NODE3_BRIDGE" "$NODE3_BRIDGE_CIDR" "\"$NODE3_HOST\""
        log "node3: dockerd started (pid $(cat "$NODE3_DIR/dockerd.pid"), $NODE3_HOST, bridge $NODE3_BRIDGE)"
    fi
    # The BuildKit image, when the images part has made it (a lab started before node3 existed).
    if [[ -f $LAB_CACHE/buildkit-image/key && -f $LAB_CACHE/buildkit-image/image-$(cat "$LAB_CACHE/buildkit-image/key").tar ]]; then
        ensure_buildkit_on docker3 node3
    fi
}

ensure_farm_user() {
    getent group docker >/dev/null || groupadd --system docker
    if ! id "$SSH_USER" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/sh --groups docker "$SSH_USER"
    fi
    # The docker group is root on node1's engine: `down` takes it back (down_sshd), unless
    # the user had it before the lab (marked here, the first time).
    if id -nG "$SSH_USER" | grep -qw docker; then
        [[ -f $LAB_STATE/farm-docker-group.ours || -f $LAB_STATE/farm-docker-group.theirs ]] ||
            { mkdir -p "$LAB_STATE"; : >"$LAB_STATE/farm-docker-group.theirs"; }
    else
        usermod -aG docker "$SSH_USER"
        mkdir -p "$LAB_STATE"; : >"$LAB_STATE/farm-docker-group.ours"
    fi
    # useradd leaves a locked '!' password, which sshd refuses without PAM.
    [[ $(getent shadow "$SSH_USER" | cut -d: -f2) == '*' ]] || usermod -p '*' "$SSH_USER"
}
ensure_ssh_keys() {
    (umask 077 && mkdir -p "$SSH_DIR"); chmod 700 "$SSH_DIR"
    # umask 077 from the start: no key file is ever readable by others, not even for a moment.
    [[ -f $SSH_DIR/ssh_host_ed25519_key ]] || (umask 077 && ssh-keygen -q -t ed25519 -N '' -C 'buildkit-farm-lab host' -f "$SSH_DIR/ssh_host_ed25519_key")
    [[ -f $SSH_DIR/id_ed25519 ]] || (umask 077 && ssh-keygen -q -t ed25519 -N '' -C 'buildkit-farm-lab client' -f "$SSH_DIR/id_ed25519")
    # The second line covers any port: tests start private sshds with the same host key (and
    # stop them, to take a node down without touching the shared one on $SSH_PORT).
    { printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")"
      printf '[127.0.0.1]:* %s\n' "$(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")"; } >"$SSH_DIR/known_hosts"
    local home; home=$(getent passwd "$SSH_USER" | cut -d: -f6)
    install -d -m 700 -o "$SSH_USER" -g "$SSH_USER" "$home/.ssh"
    install -m 600 -o "$SSH_USER" -g "$SSH_USER" "$SSH_DIR/id_ed25519.pub" "$home/.ssh/authorized_keys"
    cat >"$SSH_DIR/sshd_config" <<CONF
# The lab's private sshd: node2's door, like the book's ssh://root@node2.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $SSH_DIR/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $SSH_USER
X11Forwarding no
# Builds open several sessions at once.
MaxStartups 100:30:200
MaxSessions 100
# The docker CLI runs 'docker system dial-stdio' over ssh: point it at node2.
SetEnv DOCKER_HOST=$NODE2_HOST
CONF
    mkdir -p /etc/ssh/ssh_config.d
    cat >"$SSH_DROPIN" <<CONF
# Written by buildkit-farm's lab/lab.sh: how root reaches node2 (ssh://farm@127.0.0.1:2222).
Match host 127.0.0.1 user $SSH_USER
    IdentityFile $SSH_DIR/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $SSH_DIR/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
CONF
}
sshd_ok() { timeout 15 ssh -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true </dev/null >/dev/null 2>&1; }
node2_ssh_ok() { timeout 20 docker -H "ssh://$SSH_USER@127.0.0.1:$SSH_PORT" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
up_sshd() {
    ensure_farm_user
    ensure_ssh_keys
    if pid_alive "$SSH_DIR/sshd.pid" && sshd_ok; then log "sshd: already up"; return 0; fi
    mkdir -p /run/sshd
    /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd config rejected: $SSH_DIR/sshd_config"
    start_daemon "$SSH_DIR/sshd.log" /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config"
    wait_for 20 sshd sshd_ok || { tail -20 "$SSH_DIR/sshd.log" >&2; die "ssh farm@127.0.0.1:$SSH_PORT does not work"; }
    log "sshd: up on 127.0.0.1:$SSH_PORT (pid $(cat "$SSH_DIR/sshd.pid"))"
}

# sign_cert NAME SUBJECT EXTENSIONS: $TLS_DIR/NAME.pem and NAME.key, signed by the lab's CA.
sign_cert() {
    local name=$1 subject=$2 extensions=$3
    (umask 077 && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
        -keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.csr" 2>/dev/null)
    openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
        -CAcreateserial -days 825 -out "$TLS_DIR/$name.pem" \
        -extfile <(printf '%b\nbasicConstraints=CA:FALSE\n' "$extensions") 2>/dev/null
    rm -f "$TLS_DIR/$name.csr"
}

ensure_tls() {
    mkdir -p "$TLS_DIR/certs"
    chmod go-rwx "$TLS_DIR"/*.key 2>/dev/null || true   # keys of a lab made before the umask below
    if [[ ! -f $TLS_DIR/ca.pem || ! -f $TLS_DIR/ca.key ]]; then
        (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj '/CN=buildkit-farm lab CA' -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
            -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null)
        rm -f "$TLS_DIR/server.pem" "$TLS_DIR/client.pem"
    fi
    # The registries' and node2's server certificate, and a client one for farm nodes
    # reaching node2 over tcp+TLS.
    [[ -f $TLS_DIR/server.pem ]] || sign_cert server '/CN=127.0.0.1' 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'
    [[ -f $TLS_DIR/client.pem ]] || sign_cert client '/CN=buildkit-farm lab client' 'extendedKeyUsage=clientAuth'
    chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key" "$TLS_DIR/client.key"
    chmod 644 "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/client.pem"
    # SSL_CERT_DIR for the buildx client, which merges the per-node manifests itself.
    cp "$TLS_DIR/ca.pem" "$TLS_DIR/certs/buildkit-farm-lab-ca.pem"
    openssl rehash "$TLS_DIR/certs" 2>/dev/null || c_rehash "$TLS_DIR/certs" >/dev/null
    # dockerd (docker pull/run from the TLS registry) trusts it through certs.d.
    [[ -d /etc/docker/certs.d ]] || : >"$LAB_STATE/certs.d.ours"
    mkdir -p "/etc/docker/certs.d/$TLS_REGISTRY"
    cp "$TLS_DIR/ca.pem" "/etc/docker/certs.d/$TLS_REGISTRY/ca.crt"
}
registry_ok() { curl -sf -m 5 "http://$REGISTRY/v2/" >/dev/null; }
tls_registry_ok() { curl -sf -m 5 --cacert "$TLS_DIR/ca.pem" "https://$TLS_REGISTRY/v2/" >/dev/null; }
# start_registry NAME ADDR TLS(0|1)
start_registry() {
    local name=$1 addr=$2 tls=$3 dir="$LAB_STATE/$1"
    mkdir -p "$dir/data"
    {
        printf 'version: 0.1\nlog:\n  level: warn\n  fields: {service: %s}\n' "$name"
        printf 'storage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\n' "$dir/data"
        printf 'http:\n  addr: %s\n  headers: {X-Content-Type-Options: [nosniff]}\n' "$addr"
        if ((tls)); then printf '  tls:\n    certificate: %s\n    key: %s\n' "$TLS_DIR/server.pem" "$TLS_DIR/server.key"; fi
    } >"$dir/config.yml"
    start_daemon "$dir/registry.log" docker-registry serve "$dir/config.yml"
    printf '%s\n' "$LAST_PID" >"$dir/registry.pid"
}
up_registry() {
    ensure_tls
    if pid_alive "$LAB_STATE/registry/registry.pid" && registry_ok; then log "registry: already up on $REGISTRY"
    else
        registry_ok && die "something else answers on $REGISTRY; stop it first"
        start_registry registry "$REGISTRY" 0
        wait_for 20 registry registry_ok || { tail "$LAB_STATE/registry/registry.log" >&2; die "registry on $REGISTRY did not answer"; }
        log "registry: up on http://$REGISTRY (pid $(cat "$LAB_STATE/registry/registry.pid"))"
    fi
    if pid_alive "$LAB_STATE/tls-registry/registry.pid" && tls_registry_ok; then log "tls-registry: already up on $TLS_REGISTRY"
    else
        start_registry tls-registry "$TLS_REGISTRY" 1
        wait_for 20 tls-registry tls_registry_ok || { tail "$LAB_STATE/tls-registry/registry.log" >&2; die "TLS registry on $TLS_REGISTRY did not answer"; }
        log "tls-registry: up on https://$TLS_REGISTRY (pid $(cat "$LAB_STATE/tls-registry/registry.pid"), CA $TLS_DIR/ca.pem)"
    fi
}

# image_label DOCKERFN: our label on moby/buildkit:buildx-stable-1 there ('' if none).
image_label() { "$1" image inspect "$BUILDKIT_TAG" --format "{{ index .Config.Labels \"$LAB_LABEL\" }}" 2>/dev/null || true; }
image_present() { "$1" image inspect "$BUILDKIT_TAG" >/dev/null 2>&1; }
# ensure_buildkit_on DOCKERFN NAME: load our BuildKit image unless a current one is there.
ensure_buildkit_on() {
    local fn=$1 name=$2 key; key=$(cat "$LAB_CACHE/buildkit-image/key")
    local have; have=$(image_label "$fn")
    if [[ $have == "$key" ]]; then log "buildkit-image: $name has it"; return 0; fi
    if [[ -z $have ]] && image_present "$fn"; then
        log "buildkit-image: $name has an upstream $BUILDKIT_TAG (not ours); leaving it"
        return 0
    fi
    local tar="$LAB_CACHE/buildkit-image/image-$key.tar"
    if [[ ! -f $tar ]]; then
        log "buildkit-image: building $BUILDKIT_TAG ($key) on node1"
        DOCKER_BUILDKIT=1 docker1 build -q -t "$BUILDKIT_TAG" "$LAB_CACHE/buildkit-image" >/dev/null
        docker1 save -o "$tar.tmp" "$BUILDKIT_TAG" && mv "$tar.tmp" "$tar"
    fi
    [[ $(image_label "$fn") == "$key" ]] || "$fn" load -q -i "$tar" >/dev/null
    log "buildkit-image: $name has $BUILDKIT_TAG ($key)"
}
try_pull_upstream() {
    # Only worth a short try: these machines normally cannot reach Docker Hub.
    if timeout 15 docker -H "$NODE1_HOST" pull -q "$BUILDKIT_TAG" >/dev/null 2>&1; then
        log "buildkit-image: pulled upstream $BUILDKIT_TAG"
        return 0
    fi
    log "buildkit-image: no upstream $BUILDKIT_TAG reachable; using the lab's build from Debian sources"
    return 1
}
registry_has() { curl -sf -m 5 -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$1/manifests/$2"; }
up_buildkit_image() {
    [[ -f $LAB_CACHE/buildkit-image/key ]] || die "no BuildKit image rootfs: run lab/lab.sh install"
    if ! image_present docker1 && [[ ! -f $LAB_CACHE/buildkit-image/image-$(cat "$LAB_CACHE/buildkit-image/key").tar ]]; then
        try_pull_upstream || true
    fi
    ensure_buildkit_on docker1 node1
    ensure_buildkit_on docker2 node2
    ensure_buildkit_on docker3 node3
    local key; key=$(cat "$LAB_CACHE/buildkit-image/key")
    if [[ -f $LAB_STATE/registry/buildkit.key && $(cat "$LAB_STATE/registry/buildkit.key") == "$key" ]] && registry_has buildkit lab; then
        log "buildkit-image: $BUILDKIT_LAB_REF already pushed"
    else
        docker1 tag "$BUILDKIT_TAG" "$BUILDKIT_LAB_REF"
        docker1 push -q "$BUILDKIT_LAB_REF" >/dev/null
        docker1 rmi "$BUILDKIT_LAB_REF" >/dev/null
        printf '%s\n' "$key" >"$LAB_STATE/registry/buildkit.key"
        log "buildkit-image: pushed $BUILDKIT_LAB_REF"
    fi
}

up_base() {
    local key; key=$(ls "$LAB_CACHE"/debs/busybox/ | sha256sum | cut -c1-16)
    if [[ -f $LAB_STATE/registry/base.key && $(cat "$LAB_STATE/registry/base.key") == "$key" ]] && registry_has base latest; then
        log "base: $BASE_REF already pushed"; return 0
    fi
    local refs=() arch platform
    for arch in amd64 arm64 armhf; do
        case $arch in
            amd64) platform=linux/amd64 ;; arm64) platform=linux/arm64 ;; armhf) platform=linux/arm/v7 ;;
        esac
        local ctx="$LAB_CACHE/base/$arch" ref="$REGISTRY/base:${platform//\//-}"
        [[ -x $ctx/rootfs/bin/busybox ]] || die "no busybox rootfs for $arch: run lab/lab.sh install"
        printf 'FROM scratch\nCOPY rootfs/ /\nLABEL %s=base\nCMD ["sh"]\n' "$LAB_LABEL" >"$ctx/Dockerfile"
        DOCKER_BUILDKIT=1 docker1 build -q --platform "$platform" -t "$ref" "$ctx" >/dev/null
        docker1 push -q "$ref" >/dev/null
        docker1 rmi "$ref" >/dev/null
        refs+=("$ref")
    done
    docker -H "$NODE1_HOST" buildx imagetools create -t "$BASE_REF" "${refs[@]}" >/dev/null 2>&1 ||
        DOCKER_CONFIG="$LAB_STATE/docker-config" docker -H "$NODE1_HOST" buildx imagetools create -t "$BASE_REF" "${refs[@]}"
    printf '%s\n' "$key" >"$LAB_STATE/registry/base.key"
    log "base: pushed $BASE_REF (linux/amd64, linux/arm64, linux/arm/v7)"
}
up_images() { up_buildkit_image; up_base; }

# ---------------------------------------------------------------- down: parts
# umount_under DIR: lazily unmount what dockerd left under DIR (netns bind mounts).
umount_under() {
    local m
    for m in $(awk -v d="$1" 'index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}
down_sshd() {
    stop_pidfile "$SSH_DIR/sshd.pid" sshd 10
    # Membership of the docker group is root on node1's engine: take back what the lab gave.
    if [[ ! -f $LAB_STATE/farm-docker-group.theirs ]] && id -nG "$SSH_USER" 2>/dev/null | grep -qw docker; then
        gpasswd -d "$SSH_USER" docker >/dev/null && log "sshd: user $SSH_USER removed from the docker group"
    fi
    rm -f "$LAB_STATE/farm-docker-group.ours"
}
down_node2() { stop_engine node2 "$NODE2_DIR" "$NODE2_BRIDGE"; }
down_node3() { stop_engine node3 "$NODE3_DIR" "$NODE3_BRIDGE"; }
down_registry() {
    stop_pidfile "$LAB_STATE/registry/registry.pid" registry 10
    stop_pidfile "$LAB_STATE/tls-registry/registry.pid" tls-registry 10
}
down_node1() {
    local dir="$LAB_STATE/node1"
    if ! pid_alive "$dir/dockerd.pid"; then
        node1_answers && log "node1: not started by the lab; leaving it running" || log "node1: not running"
        return 0
    fi
    stop_pidfile "$dir/dockerd.pid" node1 40
    umount_under /var/run/docker
    umount_under /run/docker
    umount_under /var/lib/docker
    if [[ -f $dir/docker0.ours ]] && ip link show docker0 >/dev/null 2>&1; then ip link del docker0; log "node1: bridge docker0 removed"; fi
    rm -f "$dir/docker0.ours"
}
down_binfmt() { log "binfmt: left enabled (machine setup, like the packages)"; }
down_images() { log "images: kept in the engines' data-roots and the registry's storage"; }
down_lab_clients() {
    # Builders and contexts of `make demo` live in the lab's own DOCKER_CONFIG.
    local cfg="$LAB_STATE/docker-config"
    if [[ -d $cfg ]]; then
        local b
        for b in $(DOCKER_CONFIG=$cfg docker buildx ls --format '{{.Name}}' 2>/dev/null | grep '^labdemo' | sort -u); do
            DOCKER_CONFIG=$cfg timeout 60 docker buildx rm -f "$b" >/dev/null 2>&1 || true
        done
        rm -rf "$cfg"
    fi
    rm -f "$SSH_DROPIN" "/etc/docker/certs.d/$TLS_REGISTRY/ca.crt"
    rmdir "/etc/docker/certs.d/$TLS_REGISTRY" 2>/dev/null || true
    [[ -f $LAB_STATE/certs.d.ours ]] && rmdir /etc/docker/certs.d 2>/dev/null && rm -f "$LAB_STATE/certs.d.ours"
    true
}

# ---------------------------------------------------------------- the password registry
# auth-registry: the same registry program with `auth: htpasswd`; the password is made once
# (random, mode 600 under $AUTH_DIR) and only `lab.sh env` prints it, for tests.
auth_registry_ok() { [[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$AUTH_REGISTRY/v2/") == 401 ]]; }
auth_password() { cat "$AUTH_DIR/password" 2>/dev/null || true; }
ensure_auth_htpasswd() {
    mkdir -p "$AUTH_DIR/data"
    chmod 700 "$AUTH_DIR"
    if [[ ! -s $AUTH_DIR/password ]]; then
        (umask 077; openssl rand -hex 16 >"$AUTH_DIR/password")
    fi
    [[ -s $AUTH_DIR/htpasswd && $AUTH_DIR/htpasswd -nt $AUTH_DIR/password ]] && return 0
    if command -v htpasswd >/dev/null; then
        htpasswd -niB "$AUTH_USER" <"$AUTH_DIR/password" >"$AUTH_DIR/htpasswd.new"
    else  # glibc's crypt makes the same bcrypt ($2b$) line
        python3 -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.stdin.read().strip(), crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
            "$AUTH_USER" <"$AUTH_DIR/password" 2>/dev/null >"$AUTH_DIR/htpasswd.new"
    fi
    grep -q "^$AUTH_USER:\$2" "$AUTH_DIR/htpasswd.new" || die "auth-registry: could not make a bcrypt htpasswd line (install apache2-utils)"
    mv "$AUTH_DIR/htpasswd.new" "$AUTH_DIR/htpasswd"
}
up_auth_registry() {
    ensure_auth_htpasswd
    if pid_alive "$AUTH_DIR/registry.pid" && auth_registry_ok; then log "auth-registry: already up on $AUTH_REGISTRY"; return 0; fi
    [[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$AUTH_REGISTRY/v2/") == 000 ]] \
        || die "something else answers on $AUTH_REGISTRY; stop it first"
    {
        printf 'version: 0.1\nlog:\n  level: warn\n  fields: {service: auth-registry}\n'
        printf 'storage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\n' "$AUTH_DIR/data"
        printf 'http:\n  addr: %s\n  headers: {X-Content-Type-Options: [nosniff]}\n' "$AUTH_REGISTRY"
        printf 'auth:\n  htpasswd: {realm: buildkit-farm-lab, path: %s}\n' "$AUTH_DIR/htpasswd"
    } >"$AUTH_DIR/config.yml"
    start_daemon "$AUTH_DIR/registry.log" docker-registry serve "$AUTH_DIR/config.yml"
    printf '%s\n' "$LAST_PID" >"$AUTH_DIR/registry.pid"
    wait_for 20 auth-registry auth_registry_ok || { tail "$AUTH_DIR/registry.log" >&2; die "auth-registry on $AUTH_REGISTRY did not answer 401"; }
    log "auth-registry: up on http://$AUTH_REGISTRY, user $AUTH_USER (pid $(cat "$AUTH_DIR/registry.pid"))"
}
down_auth_registry() { stop_pidfile "$AUTH_DIR/registry.pid" auth-registry 10; }
status_auth_registry() {
    if auth_registry_ok; then status_line auth-registry up "http://$AUTH_REGISTRY (401 without login, user $AUTH_USER)"
    else status_line auth-registry down "http://$AUTH_REGISTRY"; return 1; fi
}
env_auth_registry() {
    printf 'export FARM_LAB_AUTH_REGISTRY=%s\nexport FARM_LAB_AUTH_USER=%s\nexport FARM_LAB_AUTH_PASSWORD=%s\n' \
        "$AUTH_REGISTRY" "$AUTH_USER" "$(auth_password)"
}

# ---------------------------------------------------------------- status and env
status_line() { printf '%-15s %-5s %s\n' "$1" "$2" "$3"; }
cmd_status() {
    local bad=0 v
    if v=$(timeout 10 docker -H "$NODE1_HOST" version --format '{{.Server.Version}}' 2>/dev/null); then
        local who=external; pid_alive "$LAB_STATE/node1/dockerd.pid" && who="started by lab, pid $(cat "$LAB_STATE/node1/dockerd.pid")"
        status_line node1 up "$NODE1_HOST dockerd $v ($who) linux/amd64"
    else status_line node1 down "$NODE1_HOST"; bad=1; fi
    if node2_answers; then status_line node2 up "$NODE2_HOST pid $(cat "$NODE2_DIR/dockerd.pid" 2>/dev/null) bridge $NODE2_BRIDGE linux/arm64,linux/arm/v7"
    else status_line node2 down "$NODE2_HOST"; bad=1; fi
    if node3_answers; then status_line node3 up "$NODE3_HOST pid $(cat "$NODE3_DIR/dockerd.pid" 2>/dev/null) bridge $NODE3_BRIDGE linux/arm64,linux/arm/v7"
    else status_line node3 down "$NODE3_HOST"; bad=1; fi
    if node2_tcp_ok; then status_line node2-tcp up "$NODE2_TCP -> node2 (TLS, client cert $TLS_DIR/client.pem)"
    else status_line node2-tcp down "$NODE2_TCP"; bad=1; fi
    if pid_alive "$SSH_DIR/sshd.pid" && node2_ssh_ok; then status_line sshd up "ssh://$SSH_USER@127.0.0.1:$SSH_PORT -> node2"
    else status_line sshd down "ssh://$SSH_USER@127.0.0.1:$SSH_PORT"; bad=1; fi
    if registry_ok; then status_line registry up "http://$REGISTRY"; else status_line registry down "http://$REGISTRY"; bad=1; fi
    if tls_registry_ok; then status_line tls-registry up "https://$TLS_REGISTRY CA=$TLS_DIR/ca.pem"
    else status_line tls-registry down "https://$TLS_REGISTRY CA=$TLS_DIR/ca.pem"; bad=1; fi
    if binfmt_ok; then status_line binfmt up "qemu-aarch64 qemu-arm"; else status_line binfmt down "qemu-aarch64 qemu-arm"; bad=1; fi
    local n1=missing n2=missing n3=missing
    image_present docker1 && n1=$( [[ -n $(image_label docker1) ]] && echo lab || echo upstream)
    node2_answers && image_present docker2 && n2=$( [[ -n $(image_label docker2) ]] && echo lab || echo upstream)
    node3_answers && image_present docker3 && n3=$( [[ -n $(image_label docker3) ]] && echo lab || echo upstream)
    if [[ $n1 != missing && $n2 != missing && $n3 != missing ]]; then status_line buildkit-image up "$BUILDKIT_TAG node1=$n1 node2=$n2 node3=$n3, $BUILDKIT_LAB_REF"
    else status_line buildkit-image down "$BUILDKIT_TAG node1=$n1 node2=$n2 node3=$n3"; bad=1; fi
    if registry_ok && registry_has base latest; then status_line base up "$BASE_REF"; else status_line base down "$BASE_REF"; bad=1; fi
    status_buildx
    status_auth_registry || bad=1
    return $bad
}
# Installed, not started: shown, but not counted as a part that is down.
status_buildx() {
    local sys; sys=$(docker buildx version 2>/dev/null | awk '{print $2}')
    if buildx_new_ok; then status_line buildx up "system ${sys:-none}; $(cat "$BUILDX_NEW_DIR/version") in $BUILDX_NEW_DIR (FARM_LAB_BUILDX=$BUILDX_NEW)"
    else status_line buildx down "system ${sys:-none}; no buildx $BUILDX_NEW in $BUILDX_NEW_DIR (lab/lab.sh install)"; fi
}
cmd_env() {
    cat <<ENV
export FARM_LAB_STATE=$LAB_STATE
export FARM_LAB_NODE1=$NODE1_HOST
export FARM_LAB_NODE2=ssh://$SSH_USER@127.0.0.1:$SSH_PORT
export FARM_LAB_NODE2_SOCKET=$NODE2_HOST
export FARM_LAB_NODE2_TCP=$NODE2_TCP
export FARM_LAB_NODE3=$NODE3_HOST
export FARM_LAB_CLIENT_CERT=$TLS_DIR/client.pem
export FARM_LAB_CLIENT_KEY=$TLS_DIR/client.key
export FARM_LAB_REGISTRY=$REGISTRY
export FARM_LAB_TLS_REGISTRY=$TLS_REGISTRY
export FARM_LAB_CA=$TLS_DIR/ca.pem
export FARM_LAB_CERT_DIR=$TLS_DIR/certs
export FARM_LAB_SSL_CERT_DIR=/etc/ssl/certs:$TLS_DIR/certs
export FARM_LAB_BASE=$BASE_REF
export FARM_LAB_BUILDKIT_IMAGE=$BUILDKIT_TAG
export FARM_LAB_BUILDKIT_REF=$BUILDKIT_LAB_REF
export FARM_LAB_FARM_FILE=$LAB_DIR/farm.toml
export FARM_LAB_POOL_FILE=$LAB_DIR/pool.toml
export FARM_LAB_BUILDX_029_DIR=$BUILDX_NEW_DIR
ENV
    env_auth_registry
}

# ---------------------------------------------------------------- main
PARTS=(binfmt node1 node2 node3 registry auth-registry sshd images)
valid_part() { local p; for p in "${PARTS[@]}"; do [[ $p == "$1" ]] && return 0; done; return 1; }
cmd_up() {
    local parts=("$@")
    ((${#parts[@]})) || parts=("${PARTS[@]}")
    local p
    for p in "${parts[@]}"; do valid_part "$p" || bad_usage "unknown part '$p' (parts: ${PARTS[*]})"; done
    for p in "${parts[@]}"; do step "up $p" "up_${p//-/_}"; done
}
cmd_down() {
    local parts=("$@") full=0
    if ((${#parts[@]} == 0)); then parts=(sshd node2 node3 auth-registry registry node1 binfmt images); full=1; fi
    local p
    for p in "${parts[@]}"; do valid_part "$p" || bad_usage "unknown part '$p' (parts: ${PARTS[*]})"; done
    ((full)) && step "down clients" down_lab_clients
    for p in "${parts[@]}"; do step "down $p" "down_${p//-/_}"; done
}
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
    local cmd=${1:-}; shift || true
    case $cmd in
        install) ((EUID == 0)) || die "run as root"; with_lock; local t0=$EPOCHREALTIME; cmd_install
                 log "install finished in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f s", b - a}')" ;;
        up)      ((EUID == 0)) || die "run as root"; with_lock; local t0=$EPOCHREALTIME; cmd_up "$@"
                 log "up finished in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f s", b - a}')" ;;
        down)    ((EUID == 0)) || die "run as root"; with_lock; local t0=$EPOCHREALTIME; cmd_down "$@"
                 log "down finished in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f s", b - a}')" ;;
        status)  cmd_status ;;
        env)     cmd_env ;;
        -h|--help|help|'') usage ;;
        *) usage >&2; exit 2 ;;
    esac
}
if [[ ${1:-} == __call ]]; then shift; "$@"; exit; fi
main "$@"
