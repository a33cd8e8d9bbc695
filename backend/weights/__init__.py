"""Shipped weights: small ``.safetensors`` files listed in ``manifest.json`` with their sha256 (and the
plain-text BRISQUE LIVE model files, read by OpenCV's YAML reader; see ``critic.md``).

Loading verifies the hash before reading a byte of tensors, and never unpickles anything: a file that
is missing, changed or not in the manifest is refused with a sentence that says which and why.
"""

import hashlib
import json
import os

WEIGHTS_DIR = os.path.dirname(os.path.abspath(__file__))


class WeightsError(Exception):
    pass


def sha256_of(path, block=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(block), b""):
            digest.update(piece)
    return digest.hexdigest()


def manifest(directory=WEIGHTS_DIR):
    path = os.path.join(directory, "manifest.json")
    if not os.path.exists(path):
        return {"files": {}}
    with open(path) as handle:
        return json.load(handle)


def entry(name, directory=WEIGHTS_DIR):
    """The manifest entry of one weights file, or None when it is not listed or not present."""
    item = manifest(directory)["files"].get(name)
    if item is None or not os.path.exists(os.path.join(directory, name)):
        return None
    return item


def load(name, directory=WEIGHTS_DIR):
    """Verified tensors of one weights file: {name: tensor}."""
    return load_with_metadata(name, directory)[0]


def load_with_metadata(name, directory=WEIGHTS_DIR):
    """Verified tensors and the file's string metadata (model configuration): ({name: tensor}, {key: str})."""
    from safetensors import safe_open

    with safe_open(verified_path(name, directory), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}


def verified_path(name, directory=WEIGHTS_DIR):
    """The path of a listed file whose sha256 matches its manifest entry (for files that are not
    safetensors, e.g. the BRISQUE model's YAML); raises WeightsError otherwise."""
    item = manifest(directory)["files"].get(name)
    path = os.path.join(directory, name)
    if item is None:
        raise WeightsError("weights file %s is not listed in %s/manifest.json" % (name, directory))
    if not os.path.exists(path):
        raise WeightsError("weights file %s is missing from %s" % (name, directory))
    actual = sha256_of(path)
    if actual != item["sha256"]:
        raise WeightsError("weights file %s does not match its manifest (sha256 %s, expected %s): "
                           "it was changed or damaged; reinstall it" % (name, actual[:12], item["sha256"][:12]))
    return path


def record(path, model, version, training, metrics, directory=WEIGHTS_DIR):
    """Add or update the manifest entry of a freshly trained weights file (used by training loops; several
    trainers may finish at once, so the read-modify-write holds a lock)."""
    import fcntl

    with open(os.path.join(directory, ".manifest.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = manifest(directory)
        name = os.path.basename(path)
        data["files"][name] = {"model": model, "version": version, "sha256": sha256_of(path),
                               "bytes": os.path.getsize(path), "training": training, "metrics": metrics}
        with open(os.path.join(directory, "manifest.json") + ".tmp", "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(os.path.join(directory, "manifest.json") + ".tmp", os.path.join(directory, "manifest.json"))
    return data["files"][name]


def update_metrics(name, metrics, directory=WEIGHTS_DIR):
    """Refresh the measured numbers of a listed file (an evaluation run) without touching its training record."""
    data = manifest(directory)
    data["files"][name]["metrics"].update(metrics)
    with open(os.path.join(directory, "manifest.json"), "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
