#!/bin/bash
# Screenshots for plugin_gimp/README.md, from the real GIMP 3 of the test root under Xvfb (the root's xvfb,
# xdotool and xwd): the Filters → Semantic Enhance menu, the Apply Filter Stack dialog, its result (a real
# daemon started here, the stack typed into the dialog, OK pressed), and Backend…'s connection test.
#   tests/gimp/screenshot_menu.sh [ROOT] [OUTDIR]     (defaults: .cache/gimp-root, plugin_gimp/docs)
# Installs the plug-in from this checkout into the root; needs /data/photo.png there (the GIMP tests put it).
# Xvfb runs at depth 16: at depth 24 without a compositor GTK's popup menus paint black.
# The clicks are screen coordinates of GIMP's default single-window layout at 1280x800; there is no
# window manager, so dialogs open at the top-left corner (cropped from there).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROOT=${1:-$REPO/.cache/gimp-root}
OUT=${2:-$REPO/plugin_gimp/docs}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
# the plug-in as it is in this checkout, no saved Backend… settings
SEMANTIC_ENHANCE_GIMP_ROOT="$ROOT" $PYTHON -c "import sys; sys.path.insert(0, '$HERE'); import harness; harness.install_plugin()"
rm -f "$ROOT/data/shot-token"
PORT=$($PYTHON -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cd "$REPO"
$PYTHON -m backend.cli serve --port "$PORT" --device cpu --token-file "$ROOT/data/shot-token" >/tmp/se-shot-daemon.log 2>&1 &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true' EXIT
for i in $(seq 1 60); do [ -s "$ROOT/data/shot-token" ] && break; sleep 1; done

cat > "$ROOT/data/screenshot.sh" <<'INNER'
#!/bin/bash
export HOME=/root DISPLAY=:99 LANG=C.UTF-8 PATH=/usr/bin:/bin
Xvfb :99 -screen 0 1280x800x16 -nolisten tcp >/tmp/xvfb.log 2>&1 &
XVFB=$!
sleep 2
gimp-3.0 --no-splash /data/photo.png >/tmp/gimp-gui.log 2>&1 &
GIMP=$!
for i in $(seq 1 90); do xdotool search --name "photo" >/dev/null 2>&1 && break; sleep 1; done
sleep 4
xdotool mousemove 426 12 click 1; sleep 3          # Filters
xdotool mousemove 488 490; sleep 3                 # Semantic Enhance ▸
xwd -root -silent > /data/menu.xwd
xdotool mousemove 650 490 mousemove 706 515 click 1; sleep 6   # Apply Filter Stack…
DIALOG=$(xdotool search --name "Apply Filter Stack" | head -1)
xdotool windowfocus "$DIALOG"; sleep 1              # no window manager gives it the keyboard
xdotool mousemove 250 65 click 1; sleep 1          # "Stack as text"
xdotool key ctrl+a BackSpace; sleep 1             # GIMP remembers the last run's text
xdotool type --delay 80 '{"filters": [{"name": "exposure", "values": [0.5]}, {"name": "saturation", "values": [0.5]}]}'
sleep 1
xwd -root -silent > /data/dialog.xwd
xdotool mousemove 346 205 click 1; sleep 10        # OK
xdotool mousemove 1200 760; sleep 1               # the brush outline off the canvas
xwd -root -silent > /data/result.xwd
kill $GIMP; sleep 1; kill -9 $GIMP 2>/dev/null    # a fresh GIMP: the filter history now shifts the menu
gimp-3.0 --no-splash /data/photo.png >/tmp/gimp-gui.log 2>&1 &
GIMP=$!
for i in $(seq 1 90); do xdotool search --name "photo" >/dev/null 2>&1 && break; sleep 1; done
sleep 4
xdotool mousemove 426 12 click 1; sleep 3
xdotool mousemove 488 490; sleep 3
xdotool mousemove 650 490 mousemove 706 565 click 1; sleep 6   # Backend…
xdotool windowfocus "$(xdotool search --name "Backend" | head -1)"; sleep 1
xdotool key Return; sleep 6                        # OK: the connection test's message
xwd -root -silent > /data/backend.xwd
kill $GIMP; sleep 1; kill -9 $GIMP 2>/dev/null; kill $XVFB
INNER
chmod +x "$ROOT/data/screenshot.sh"
timeout 240 chroot "$ROOT" /usr/bin/env SEMANTIC_ENHANCE_ADDR="127.0.0.1:$PORT" \
    SEMANTIC_ENHANCE_TOKEN_FILE=/data/shot-token /data/screenshot.sh
$PYTHON - "$ROOT/data" "$OUT" "$HERE" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from PIL import Image
from xwd_to_png import read_xwd
data, out = sys.argv[1:3]
for name, box in (("menu", (680, 960)), ("dialog", (250, 420)), ("result", (680, 910)), ("backend", (232, 636))):
    Image.fromarray(read_xwd("%s/%s.xwd" % (data, name))[:box[0], :box[1]].copy()).save(
        "%s/gimp-%s.png" % (out, name), optimize=True)
print("wrote gimp-menu.png, gimp-dialog.png, gimp-result.png, gimp-backend.png into", out)
PY
