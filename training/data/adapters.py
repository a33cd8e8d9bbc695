"""Dataset adapters: the public retouching datasets as lists of ``pairs.Pair``, like our own style pairs.

A user who owns the papers' data can train and evaluate on it with the same loaders (``PairDataset``
computes and caches the semantic cues for pairs that come without them):

- ``before_after(before_dir, after_dir)``: any two folders whose files match by name (extension and case
  ignored); split by the corpus rule (sha256 of the name).
- ``yan2016(root, effect)``: Yan et al. 2016's data (the 115-image set of sa-adjust / fcn-stylize): an
  input folder (``input``/``original``/``source``...) beside one folder per effect (``Foreground
  Pop-Out``, ``local_xpro``, ``Watercolor``... spelling, case and separators are ignored). Split files
  ``train.txt``/``test.txt`` (and ``val.txt``) with one image name a line are used when present; otherwise
  the papers' protocol: 70 training images (the first 70 by name), the remaining 45 for testing, and the
  last 10 training images held out for validation as SA-AdjustNet did.
- ``fivek(root, expert="C")``: MIT-Adobe FiveK exports: an input folder (``input``/``raw``/``original``...)
  and expert folders (``expertC``/``C``/``expert_c``...), files matched by their ``aNNNN`` number, TIFF
  16-bit or JPEG. Split: a0001-a4000 train, a4001-a4500 validation, a4501-a5000 test (the usual 4500/500,
  with the validation images taken from the training part).
"""

import os
import re

from .corpus import IMAGE_EXTENSIONS, split_of
from .pairs import Pair

YAN_EFFECTS = {"foreground-pop-out": "foregroundpopout", "local-xpro": "localxpro", "watercolor": "watercolor"}
INPUT_FOLDER_NAMES = ("input", "inputs", "original", "originals", "source", "raw", "before", "in")
FIVEK_EXPERTS = "ABCDE"


def _key(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _images(folder):
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and name.lower().endswith(IMAGE_EXTENSIONS):
            found.setdefault(os.path.splitext(name)[0].lower(), path)
    return found


def _find_folder(root, wanted_keys, what):
    for name in sorted(os.listdir(root)):
        if os.path.isdir(os.path.join(root, name)) and _key(name) in wanted_keys:
            return os.path.join(root, name)
    raise FileNotFoundError("no %s folder in %s (looked for: %s)" % (what, root, ", ".join(sorted(wanted_keys))))


def _match(before, after, split_for):
    inputs, targets = _images(before), _images(after)
    common = sorted(set(inputs) & set(targets))
    if not common:
        raise ValueError("no file names in common between %s and %s" % (before, after))
    return [Pair(stem, os.path.abspath(inputs[stem]), os.path.abspath(targets[stem]), {}, split_for(stem))
            for stem in common]


def before_after(before_dir, after_dir, split=None):
    """Pairs of two folders matched by file name; ``split`` keeps one split only."""
    pairs = _match(before_dir, after_dir, split_of)
    return [p for p in pairs if split is None or p.split == split]


def _read_list(path):
    with open(path) as handle:
        return {os.path.splitext(line.strip())[0].lower() for line in handle if line.strip()}


def yan2016(root, effect, split=None, train_count=70, val_count=10):
    """Pairs of one effect of Yan et al. 2016 (``effect`` one of foreground-pop-out, local-xpro, watercolor)."""
    if effect not in YAN_EFFECTS:
        raise ValueError("Yan et al. 2016 effects: %s; got %r" % (", ".join(YAN_EFFECTS), effect))
    inputs = _find_folder(root, {_key(n) for n in INPUT_FOLDER_NAMES}, "input")
    targets = _find_folder(root, {YAN_EFFECTS[effect]}, "'%s' effect" % effect)
    lists = {name: os.path.join(root, name + ".txt") for name in ("train", "val", "test")}
    if os.path.isfile(lists["train"]) and os.path.isfile(lists["test"]):
        members = {name: _read_list(path) for name, path in lists.items() if os.path.isfile(path)}
        split_for = lambda stem: next((name for name in ("val", "test", "train") if stem in members.get(name, ())),
                                      "unused")
    else:
        order = sorted(set(_images(inputs)) & set(_images(targets)))
        position = {stem: i for i, stem in enumerate(order)}
        split_for = lambda stem: ("test" if position[stem] >= train_count else
                                  "val" if position[stem] >= train_count - val_count else "train")
    pairs = [p for p in _match(inputs, targets, split_for) if p.split != "unused"]
    return [p for p in pairs if split is None or p.split == split]


def fivek(root, expert="C", split=None):
    """Pairs of MIT-Adobe FiveK exports: input folder x expert folder, matched by the aNNNN number."""
    expert = expert.upper()
    if expert not in FIVEK_EXPERTS:
        raise ValueError("FiveK experts are A to E, got %r" % expert)
    inputs = _find_folder(root, {_key(n) for n in INPUT_FOLDER_NAMES}, "input")
    targets = _find_folder(root, {_key("expert" + expert), expert.lower(), _key("expert_" + expert)},
                           "expert %s" % expert)
    number = lambda stem: re.match(r"a(\d{4})", stem)

    def by_number(folder):
        return {number(stem).group(0): path for stem, path in _images(folder).items() if number(stem)}

    sources, retouched = by_number(inputs), by_number(targets)
    common = sorted(set(sources) & set(retouched))
    if not common:
        raise ValueError("no aNNNN images in common between %s and %s" % (inputs, targets))

    def split_for(stem):
        index = int(stem[1:])
        return "train" if index <= 4000 else "val" if index <= 4500 else "test"

    pairs = [Pair(stem, os.path.abspath(sources[stem]), os.path.abspath(retouched[stem]), {}, split_for(stem))
             for stem in common]
    return [p for p in pairs if split is None or p.split == split]
