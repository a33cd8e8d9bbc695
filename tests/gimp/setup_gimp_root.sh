#!/bin/bash
# Builds (or refreshes) the Debian trixie root in which the GIMP end-to-end tests run a real GIMP 3.
# Idempotent: a finished root is only checked (a stamp file records the package list it was made with).
# Needs root and apt (CI runs as root). ~1.2 GB, ~2 minutes on a fresh machine.
#
#   tests/gimp/setup_gimp_root.sh [ROOT]      # default: .cache/gimp-root beside this repository
#
# The packages are GIMP 3 with its Python plug-in support as Debian ships it: Python 3.13 with numpy,
# grpcio 1.51 and protobuf 4.21 (an old protobuf runtime, on purpose: the plug-in must live with it).
# xvfb and xdotool are for the README's menu screenshot (tests/gimp/screenshot_menu.sh) only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${1:-$HERE/../../.cache/gimp-root}
PACKAGES="gimp python3 gir1.2-gegl-0.4 python3-numpy python3-grpcio python3-protobuf xvfb xdotool x11-apps"
STAMP="$ROOT/.semantic-enhance-root"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ] && [ -x "$ROOT/usr/bin/gimp-console-3.0" ]; then
    echo "GIMP root ready: $ROOT"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup_gimp_root.sh: building the GIMP root needs root (debootstrap, chroot)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
mkdir -p "$ROOT"
[ -x "$ROOT/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$ROOT" http://deb.debian.org/debian

cleanup() {
    for m in "$ROOT/dev" "$ROOT/proc"; do mountpoint -q "$m" && umount "$m" || true; done
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -qq && apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null && apt-get clean"
mkdir -p "$ROOT/root/.config/GIMP/3.0/plug-ins" "$ROOT/data"
echo "$PACKAGES" > "$STAMP"
chroot "$ROOT" gimp-console-3.0 --version
du -shx "$ROOT" 2>/dev/null || true
