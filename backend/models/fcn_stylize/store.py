"""Learnt styles on disk: one ``NAME.safetensors`` (the look) and ``NAME.md`` (its model card) each, in the
user's data directory ($XDG_DATA_HOME or ~/.local/share, then ``semantic-enhance/styles``).

Why a folder and not the weights manifest: these files are the user's, made after installation, and a
running daemon must see a new one at once (``names()`` is read on every ListModels and adjust, a listdir).
A file is written whole to a temporary name and renamed, so a daemon never reads half a style.

Loading verifies before anything is used: safetensors only (never a pickle), the format tag, the sha256
of the tensors recorded in the file's metadata, the shapes (``looks.Look`` checks them) and finite values.
Shared style files from someone else go through the same checks (``import_file``). No torch here at import
time: the CLI lists and removes styles without it.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile

from ... import styles as style_registry

FORMAT = "semantic-enhance learnt look 3"
# what each format's position terms are indexed by (looks.spatial_coordinates): 1 the sRGB cube, 2 compressed Lab,
# 3 lightness, chroma and hue (with Y_NODES hats along y: the learnt height profile, docs/learn-style.md)
FORMATS = {"semantic-enhance learnt look 1": "rgb", "semantic-enhance learnt look 2": "lab", FORMAT: "lch"}
FORMAT_OF = {space: tag for tag, space in FORMATS.items()}  # the tag a look of that index is written with
TENSORS = ("quadratic", "lut", "spatial")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


class StyleFileError(ValueError):
    """A style name or file that cannot be used (one sentence)."""


class StyleExists(StyleFileError):
    """A learnt style of that name is there already: it is the user's, and only an explicit replace changes it."""


def check_new_name(name, replace=False, directory=None):
    """A name a new style may take: a plain word, not a built-in style's, not a learnt style's unless replacing."""
    check_name(name)
    if not replace and os.path.exists(paths(name, directory)[0]):
        raise StyleExists("a style named %r already exists; remove it first, choose another name or ask to "
                          "replace it" % name)
    return name


def styles_dir():
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "semantic-enhance", "styles")


def check_name(name):
    """Refuse a name that is not a plain word or that belongs to a built-in style (reserved for the paper's)."""
    if not NAME.match(name or ""):
        raise StyleFileError("a style name is 1 to 48 letters, digits, '-' or '_', starting with a letter or "
                             "digit; got %r" % name)
    if name in style_registry.STYLES:
        raise StyleFileError("%r is a built-in style's name (%s); choose another name" % (name, ", ".join(style_registry.STYLES)))
    return name


def names(directory=None):
    directory = directory or styles_dir()
    try:
        entries = os.listdir(directory)
    except OSError:
        return ()
    return tuple(sorted(n[:-12] for n in entries if n.endswith(".safetensors") and NAME.match(n[:-12])
                        and n[:-12] not in style_registry.STYLES))


def paths(name, directory=None):
    directory = directory or styles_dir()
    return os.path.join(directory, name + ".safetensors"), os.path.join(directory, name + ".md")


def digest(arrays):
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    sha = hashlib.sha256()
    for key in sorted(arrays):
        array = arrays[key]
        sha.update(("%s %s %s\n" % (key, array.dtype, list(array.shape))).encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def _write_atomic(path, write):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".partial-")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def save(name, arrays, metadata, card, directory=None, replace=False, format=FORMAT):
    """Write a learnt look ({"quadratic", "lut", "spatial"} float32 numpy arrays) and its card (``format``:
    an imported file keeps its own)."""
    from safetensors.numpy import save_file

    import numpy as np

    check_name(name)
    # safetensors writes an array's memory as it lies: a transposed view would be stored scrambled
    arrays = {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in arrays.items()}
    look_path, card_path = paths(name, directory)
    if os.path.exists(look_path) and not replace:
        raise StyleExists("a style named %r already exists (%s); remove it first or choose another name"
                             % (name, look_path))
    metadata = {key: str(value) for key, value in metadata.items()}
    metadata.update(format=format, name=name, sha256=digest(arrays))
    _write_atomic(card_path, lambda p: open(p, "w").write(card))
    _write_atomic(look_path, lambda p: save_file(arrays, p, metadata=metadata))
    return look_path


def read(path):
    """Verified arrays and metadata of a style file: ({name: float32 array}, {key: str}). Never unpickles."""
    import numpy as np
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise StyleFileError("%s is not a readable safetensors style file (%s)" % (path, error)) from None
    if metadata.get("format") not in FORMATS:
        raise StyleFileError("%s is not a learnt style (format %r, expected one of %s)"
                             % (path, metadata.get("format"), ", ".join(map(repr, FORMATS))))
    if sorted(arrays) != sorted(TENSORS):
        raise StyleFileError("%s holds tensors %s, expected %s" % (path, ", ".join(sorted(arrays)), ", ".join(TENSORS)))
    if any(array.dtype != np.float32 for array in arrays.values()):
        raise StyleFileError("%s: a style's tensors are float32" % path)
    if digest(arrays) != metadata.get("sha256"):
        raise StyleFileError("%s does not match its recorded sha256: it was changed or damaged" % path)
    return arrays, metadata


def load(name, directory=None):
    """The look of a stored style (backend.imaging.looks.Look), verified; its metadata."""
    import torch
    from ...imaging import looks

    arrays, metadata = read(paths(name, directory)[0])
    try:
        look = looks.Look(**{key: torch.from_numpy(array.copy()) for key, array in arrays.items()},
                          spatial_space=FORMATS[metadata["format"]])
    except ValueError as error:
        raise StyleFileError("style %r: %s" % (name, error)) from None
    return look, metadata


def remove(name, directory=None):
    look_path, card_path = paths(name, directory)
    if not os.path.exists(look_path):
        raise StyleFileError("there is no learnt style %r (the styles are: %s)" % (name, ", ".join(names(directory)) or "none"))
    os.unlink(look_path)
    if os.path.exists(card_path):
        os.unlink(card_path)


def export(name, destination, directory=None):
    """Copy a style's file and card into the folder ``destination`` (to share them)."""
    look_path, card_path = paths(name, directory)
    read(look_path)
    os.makedirs(destination, exist_ok=True)
    copied = [shutil.copy2(look_path, destination)]
    if os.path.exists(card_path):
        copied.append(shutil.copy2(card_path, destination))
    return copied


def import_file(path, name=None, directory=None, replace=False):
    """Verify a shared style file (and take the card beside it, if any) into the styles folder."""
    arrays, metadata = read(path)
    if name is None:
        base = os.path.basename(path)
        name = base[:-len(".safetensors")] if base.endswith(".safetensors") else metadata.get("name", "")
    check_name(name)
    card_path = path[:-len(".safetensors")] + ".md"
    card = open(card_path).read() if os.path.exists(card_path) else "# Style %s\n\nImported from %s.\n" % (name, path)
    kept = {k: v for k, v in metadata.items() if k not in ("format", "name", "sha256")}
    return save(name, arrays, kept, card, directory, replace, format=metadata["format"])


def describe(name, directory=None):
    """A one-line summary from the file's metadata (no tensors read beyond the header)."""
    from safetensors import safe_open

    try:
        with safe_open(paths(name, directory)[0], framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except Exception:  # noqa: BLE001  (a damaged file is listed as such; loading it gives the sentence)
        return "unreadable"
    report = json.loads(metadata.get("report", "{}") or "{}")
    return "%s pairs, held-out Lab error %s x the input's" % (report.get("pairs", "?"), report.get("held_out_ratio", "?"))
