#!/bin/sh
# The "compiler" of the whoami example: writes the app for one target platform.
# usage: compile.sh SOURCE TARGETOS TARGETARCH [TARGETVARIANT] [BUILDPLATFORM] > app
# It bakes in the platform the app was built for and the machine name (`uname -m`) a CPU
# of that platform reports, so the app can tell when it runs on the wrong one, as a
# binary for the wrong CPU would (exec format error).
set -eu
source=$1 os=$2 arch=$3 variant=${4:-} built_on=${5:-unknown}

case "$arch" in
  amd64) machine=x86_64 ;;
  arm64) machine=aarch64 ;;
  arm) machine=armv${variant#v}l ;;
  386) machine=i686 ;;
  *) machine=$arch ;;
esac
platform="$os/$arch${variant:+/$variant}"

sed -e "s|@PLATFORM@|$platform|g" \
    -e "s|@MACHINE@|$machine|g" \
    -e "s|@BUILT_ON@|$built_on|g" \
    "$source"
echo "compiled whoami for $platform (machine $machine) on $built_on" >&2
