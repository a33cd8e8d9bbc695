"""Install the plug-in into a GIMP 3 plug-ins folder (``semantic-enhance install-gimp-plugin``).

GIMP 3 loads ``plug-ins/NAME/NAME.py``; we install ``plug-ins/semantic_enhance/`` with:
  semantic_enhance.py          the entry (executable)
  se_plugin/                   the plug-in's modules
  se_plugin/vendor/            copies of the backend's schema.py, wire.py, descriptor set and bridge.py,
                               so plug-in and daemon speak the same contract without generated stubs
  install.json                 the backend's Python, which runs the gRPC relay when GIMP's has no grpcio

Where GIMP 3 keeps its profile (the first that exists wins; else the platform's usual one is created):
  Linux     $XDG_CONFIG_HOME/GIMP/3.0 (~/.config/GIMP/3.0), Flatpak ~/.var/app/org.gimp.GIMP/config/GIMP/3.0,
            Snap ~/snap/gimp/current/.config/GIMP/3.0
  macOS     ~/Library/Application Support/GIMP/3.0
  Windows   %APPDATA%\\GIMP\\3.0
"""

import json
import os
import shutil
import sys

PLUGIN_NAME = "semantic_enhance"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, PLUGIN_NAME)
VENDORED = ("schema.py", "wire.py", "semantic_enhance_v1.binpb", "bridge.py")


def profile_candidates(platform=None, environ=None, home=None):
    """GIMP 3 profile folders to look for, most likely first, for ``platform`` (default: this one)."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    home = home or os.path.expanduser("~")
    if platform.startswith("win"):
        appdata = environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
        return [os.path.join(appdata, "GIMP", "3.0")]
    if platform == "darwin":
        return [os.path.join(home, "Library", "Application Support", "GIMP", "3.0")]
    config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return [os.path.join(config_home, "GIMP", "3.0"),
            os.path.join(home, ".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0"),
            os.path.join(home, "snap", "gimp", "current", ".config", "GIMP", "3.0")]


def find_plugins_dir(platform=None, environ=None, home=None):
    """The plug-ins folder of the first GIMP 3 profile that exists, else of the platform's usual one."""
    candidates = profile_candidates(platform, environ, home)
    profile = next((path for path in candidates if os.path.isdir(path)), candidates[0])
    return os.path.join(profile, "plug-ins")


def _backend_transport_dir():
    from backend.transport import schema
    return os.path.dirname(os.path.abspath(schema.__file__))


def install(dest=None, backend_python=None):
    """Copy the plug-in into ``dest`` (a plug-ins folder; default: found) and return the plug-in's folder.

    ``backend_python`` (default: this interpreter, which has grpcio since it runs the backend) is
    recorded for the relay. Re-running replaces the previous copy.
    """
    plugins = os.path.abspath(os.path.expanduser(dest)) if dest else find_plugins_dir()
    target = os.path.join(plugins, PLUGIN_NAME)
    if os.path.isdir(target):
        shutil.rmtree(target)
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor", "install.json"))
    entry = os.path.join(target, PLUGIN_NAME + ".py")
    os.chmod(entry, 0o755)
    vendor = os.path.join(target, "se_plugin", "vendor")
    os.makedirs(vendor)
    with open(os.path.join(vendor, "__init__.py"), "w", encoding="utf-8") as handle:
        handle.write('"""Copies of backend/transport files made by install-gimp-plugin; do not edit."""\n')
    transport = _backend_transport_dir()
    for name in VENDORED:
        shutil.copy2(os.path.join(transport, name), os.path.join(vendor, name))
    record = {"backend_python": backend_python or sys.executable, "source": HERE}
    with open(os.path.join(target, "install.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return target


if __name__ == "__main__":
    print(install(sys.argv[1] if len(sys.argv) > 1 else None))
