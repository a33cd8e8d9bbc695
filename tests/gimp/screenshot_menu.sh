#!/bin/bash
# Screenshots for plugin_gimp/README.md: the Filters → Semantic Enhance menu and the Auto Adjust dialog,
# taken from the real GIMP 3 of the test root under Xvfb (the root's xvfb, xdotool and xwd).
#   tests/gimp/screenshot_menu.sh [ROOT] [OUTDIR]     (defaults: .cache/gimp-root, plugin_gimp/docs)
# Needs the plug-in installed in the root (running the GIMP tests does it) and /data/photo.png there.
# Xvfb runs at depth 16: at depth 24 without a compositor GTK's popup menus paint black.
# The clicks are screen coordinates of GIMP's default single-window layout at 1280x800; no window manager,
# so the dialog opens at the top-left corner (cropped from there).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${1:-$HERE/../../.cache/gimp-root}
OUT=${2:-$HERE/../../plugin_gimp/docs}
mkdir -p "$OUT"
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
xdotool mousemove 650 490 mousemove 706 540 click 1; sleep 6   # Auto Adjust…
xwd -root -silent > /data/dialog.xwd
kill $GIMP; sleep 1; kill -9 $GIMP 2>/dev/null; kill $XVFB
INNER
chmod +x "$ROOT/data/screenshot.sh"
timeout 180 chroot "$ROOT" /data/screenshot.sh
python3 - "$ROOT/data" "$OUT" "$HERE" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from PIL import Image
from xwd_to_png import read_xwd
data, out = sys.argv[1:3]
Image.fromarray(read_xwd(data + "/menu.xwd")[:680, :960].copy()).save(out + "/gimp-menu.png", optimize=True)
Image.fromarray(read_xwd(data + "/dialog.xwd")[:224, :432].copy()).save(out + "/auto-adjust-dialog.png", optimize=True)
print("wrote", out + "/gimp-menu.png", out + "/auto-adjust-dialog.png")
PY
