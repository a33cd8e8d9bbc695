"""Style pairs on disk, and the loading API the trainers use.

``build_pairs(style, out)`` renders, for every photo of the corpus (or of any folder), a 512 px input,
the style program's target and the cue masks, and records them in ``pairs.json``::

    out/pairs.json                 {"style", "size", "cue_names", "pairs": [{id, split, input, target, cues}]}
    out/input/<id>.png             the photo, longer side ``size`` (Yan et al.'s data is 512 px too)
    out/target/<id>.png            the style program's output
    out/cues/<id>/<cue>.png        soft masks, 8-bit (faces, skin, sky, vegetation, foreground)

``load_split(root_or_style, split)`` gives the records back as ``Pair(id, input, target, cues)`` paths, the
same type the dataset adapters (Yan et al., FiveK, before/after folders) produce, and ``PairDataset``
wraps any list of them as a torch Dataset of tensors.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from . import corpus as corpus_module
from .cues import CUE_NAMES, CUE_VERSION, DEFAULT_CACHE, cues_for, fit_longer_side, load_rgb, to_uint8
from .styles import PROGRAM_VERSION, apply_style, get_style, lab_distance

DEFAULT_SIZE = 512
DEFAULT_PAIRS_ROOT = os.path.join("data", "pairs")
PAIRS_FILE = "pairs.json"


@dataclass
class Pair:
    """One training example: paths of the input, its target, and (optionally) cue masks by name."""

    id: str
    input: str
    target: str
    cues: dict = field(default_factory=dict)
    split: str = "train"


def _to_tensor(rgb):
    return torch.from_numpy(np.array(rgb, dtype=np.float32, copy=True) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _to_uint8_image(tensor):
    return (tensor[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def build_pairs(style, out, photos=None, corpus_root=corpus_module.DEFAULT_ROOT, size=DEFAULT_SIZE,
                splits=None, cache_dir=DEFAULT_CACHE, log=print):
    """Write the pairs of ``style`` for the corpus (or the photo folder ``photos``) under ``out``.

    Returns the pairs.json dict. Each record also carries the input->target Lab distance.
    """
    get_style(style)
    records = corpus_module.photos_in_folder(photos) if photos else corpus_module.photos(corpus_root)
    if splits:
        records = [r for r in records if r["split"] in splits]
    if not records:
        raise ValueError("no photos found in %s" % (photos or corpus_root))
    for sub in ("input", "target", "cues"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    pairs, started = [], time.time()
    for record in records:
        pairs.append(_render_pair(style, out, record["id"], record["split"], load_rgb(record["path"], size),
                                  cache_dir))
    listing = {"style": style, "size": size, "cue_names": list(CUE_NAMES), "versions": current_versions(),
               "source": os.path.abspath(photos or corpus_root), "pairs": pairs}
    _write_listing(out, listing)
    log("%s: %d pairs in %s (%.1f s)" % (style, len(pairs), out, time.time() - started))
    return listing


def current_versions():
    """The recipe versions a pairs folder is rendered with (cues and style programs)."""
    return {"cues": CUE_VERSION, "programs": PROGRAM_VERSION}


def _write_listing(out, listing):
    with open(os.path.join(out, PAIRS_FILE), "w") as handle:
        json.dump(listing, handle, indent=1)


def _render_pair(style, out, pair_id, split, rgb, cache_dir):
    """Write one photo's input, style target and cue masks under ``out``; returns its pairs.json record."""
    cues = cues_for(rgb, cache_dir)
    image = _to_tensor(rgb)
    target = apply_style(style, image, cues)
    input_rel = os.path.join("input", pair_id + ".png")
    target_rel = os.path.join("target", pair_id + ".png")
    Image.fromarray(rgb).save(os.path.join(out, input_rel))
    Image.fromarray(_to_uint8_image(target)).save(os.path.join(out, target_rel))
    cue_rels = {}
    os.makedirs(os.path.join(out, "cues", pair_id), exist_ok=True)
    for name in CUE_NAMES:
        cue_rels[name] = os.path.join("cues", pair_id, name + ".png")
        Image.fromarray(to_uint8(cues[name])).save(os.path.join(out, cue_rels[name]))
    return {"id": pair_id, "split": split, "input": input_rel, "target": target_rel, "cues": cue_rels,
            "lab_distance": round(lab_distance(image, target), 4)}


def reframe_box(pair_id, index, width, height):
    """The ``index``-th reframing of a photo: a crop holding 35-80 % of its area, aspect 0.6-1.7, placed
    anywhere; a fixed function of the photo's id so that every run makes the same crops."""
    seed = int.from_bytes(hashlib.sha256(("reframe|%s|%d" % (pair_id, index)).encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    area = rng.uniform(0.35, 0.8) * width * height
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.7))))
    w = int(min(width, round(np.sqrt(area * aspect))))
    h = int(min(height, round(area / max(w, 1))))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    return x, y, w, h


def add_reframes(root_or_style, count, cache_dir=DEFAULT_CACHE, log=print):
    """Give each training photo of a pairs folder ``count`` reframed copies (idempotent).

    The style programs depend on the framing (the foreground is saliency times a centre prior), so a crop
    of a photo with its target rendered afresh is a new example of the style, not a copy: an augmentation
    only program-made targets allow. Only the train split is reframed; val and test stay as they are.
    Records carry ``reframe_of`` and ``reframe``; ``load_split(..., reframes=N)`` takes the first N.
    """
    root = _resolve_root(root_or_style)
    with open(os.path.join(root, PAIRS_FILE)) as handle:
        listing = json.load(handle)
    have = {p["id"] for p in listing["pairs"]}
    source = listing["source"]
    if not os.path.isdir(source) and os.path.isfile(os.path.join(corpus_module.DEFAULT_ROOT, corpus_module.MANIFEST)):
        source = corpus_module.DEFAULT_ROOT   # the corpus the pairs were built from has moved with its checkout
    sources = (corpus_module.photos(source) if os.path.isfile(os.path.join(source, corpus_module.MANIFEST))
               else corpus_module.photos_in_folder(source))
    paths = {record["id"]: record["path"] for record in sources}
    originals = [p for p in listing["pairs"] if p["split"] == "train" and "reframe_of" not in p]
    started, added = time.time(), 0
    for pair in originals:
        wanted = [j for j in range(count) if "%s--reframe%d" % (pair["id"], j) not in have]
        if not wanted:
            continue
        if pair["id"] not in paths:
            raise FileNotFoundError("photo %s of %s is no longer in %s" % (pair["id"], root, source))
        photo = load_rgb(paths[pair["id"]])
        for j in wanted:
            x, y, w, h = reframe_box(pair["id"], j, photo.shape[1], photo.shape[0])
            crop = np.asarray(fit_longer_side(Image.fromarray(np.ascontiguousarray(photo[y:y + h, x:x + w])),
                                              listing["size"]))
            record = _render_pair(listing["style"], root, "%s--reframe%d" % (pair["id"], j), "train", crop,
                                  cache_dir)
            listing["pairs"].append(dict(record, reframe_of=pair["id"], reframe=j))
            added += 1
    if added:
        _write_listing(root, listing)
        log("%s: %d reframed training pairs added in %s (%.1f s)" % (listing["style"], added, root,
                                                                  time.time() - started))
    return root


def _resolve_root(root_or_style):
    if os.path.isfile(os.path.join(root_or_style, PAIRS_FILE)):
        return root_or_style
    default = os.path.join(DEFAULT_PAIRS_ROOT, root_or_style)
    if os.path.isfile(os.path.join(default, PAIRS_FILE)):
        return default
    raise FileNotFoundError("no pairs at %s or %s: build them with `semantic-enhance data pairs --style NAME "
                            "--out DIR`" % (root_or_style, default))


def load_split(root_or_style, split=None, reframes=0):
    """Pairs of a pairs folder (or of style NAME under data/pairs/NAME) as ``Pair`` records with absolute
    paths; ``split`` None gives all of them. Reframed copies (``add_reframes``) only with ``reframes`` > 0:
    the first ``reframes`` of each photo."""
    root = _resolve_root(root_or_style)
    with open(os.path.join(root, PAIRS_FILE)) as handle:
        listing = json.load(handle)
    join = lambda rel: os.path.abspath(os.path.join(root, rel))
    return [Pair(p["id"], join(p["input"]), join(p["target"]), {k: join(v) for k, v in p["cues"].items()},
                 p["split"]) for p in listing["pairs"]
            if (split is None or p["split"] == split) and p.get("reframe", -1) < reframes]


def read_image(path):
    """An image file as float (3, H, W) in [0, 1]: any format ``backend.imaging.files`` reads; 16-bit files
    (FiveK TIFF exports) keep their precision, grey becomes RGB, alpha is dropped."""
    from backend.imaging.files import read_image as read_pixels

    pixels = read_pixels(path)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
    array = pixels.astype(np.float32) / scale
    if array.shape[2] < 3:
        array = np.repeat(array[:, :, :1], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(array[:, :, :3])).permute(2, 0, 1)


def read_mask(path):
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)


class PairDataset(torch.utils.data.Dataset):
    """Tensors of a list of ``Pair``: {"id", "input" (3,H,W), "target" (3,H,W), "cues" (K,H,W)}.

    ``cue_names`` fixes the order of the K cue channels (missing cues are zeros). Pairs without cue files
    (adapters of public datasets) get their cues computed and cached on first use when ``compute_cues``.
    ``max_side`` downsizes both images alike (nothing is cropped; batch with ``batch_size=1`` or a collate).
    """

    def __init__(self, pairs, cue_names=CUE_NAMES, compute_cues=True, max_side=None, cache_dir=DEFAULT_CACHE):
        self.pairs = list(pairs)
        self.cue_names = tuple(cue_names)
        self.compute_cues = compute_cues
        self.max_side = max_side
        self.cache_dir = cache_dir

    def __len__(self):
        return len(self.pairs)

    def _resize(self, tensor, size):
        if tuple(tensor.shape[-2:]) == size:
            return tensor
        return torch.nn.functional.interpolate(tensor[None], size=size, mode="bilinear", antialias=True,
                                               align_corners=False)[0]

    def __getitem__(self, index):
        pair = self.pairs[index]
        image, target = read_image(pair.input), read_image(pair.target)
        size = tuple(image.shape[-2:])
        if self.max_side and max(size) > self.max_side:
            scale = self.max_side / float(max(size))
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        image, target = self._resize(image, size), self._resize(target, size)
        if pair.cues:
            masks = [self._resize(read_mask(pair.cues[n])[None], size)[0] if n in pair.cues else torch.zeros(size)
                     for n in self.cue_names]
        elif self.compute_cues:
            rgb = (image.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
            computed = cues_for(rgb, self.cache_dir)
            masks = [torch.from_numpy(computed[n]) if n in computed else torch.zeros(size) for n in self.cue_names]
        else:
            masks = [torch.zeros(size) for _ in self.cue_names]
        return {"id": pair.id, "input": image, "target": target, "cues": torch.stack(masks)}


def split_stats(pairs):
    """Mean per-pixel CIELab L2 distance input -> target over ``pairs`` (the papers' "Input" row)."""
    distances = [lab_distance(read_image(p.input)[None], read_image(p.target)[None]) for p in pairs]
    return {"pairs": len(distances), "mean_lab_l2": float(np.mean(distances)) if distances else float("nan"),
            "per_pair": dict(zip([p.id for p in pairs], distances))}


def style_stats(style, corpus_root=corpus_module.DEFAULT_ROOT, split="test", size=DEFAULT_SIZE,
                cache_dir=DEFAULT_CACHE, photos=None):
    """The same distance computed straight from the corpus (nothing written): renders each photo of
    ``split`` at ``size`` with its cues and the style program, then compares."""
    get_style(style)
    records = corpus_module.photos_in_folder(photos) if photos else corpus_module.photos(corpus_root)
    distances = {}
    for record in records:
        if split is not None and record["split"] != split:
            continue
        rgb = load_rgb(record["path"], size)
        image = _to_tensor(rgb)
        distances[record["id"]] = lab_distance(image, apply_style(style, image, cues_for(rgb, cache_dir)))
    values = list(distances.values())
    return {"pairs": len(values), "mean_lab_l2": float(np.mean(values)) if values else float("nan"),
            "per_pair": distances}


def ensure_pairs(style, data=None, log=print):
    """The pairs of a style; builds the corpus and the pairs when they are missing."""
    if data:
        return data
    root = os.path.join(DEFAULT_PAIRS_ROOT, style)
    listing_path = os.path.join(root, PAIRS_FILE)
    if os.path.exists(listing_path):
        with open(listing_path) as handle:
            versions = json.load(handle).get("versions")
        if versions != current_versions():  # rendered by older cues or programs: its targets are stale
            log("%s pairs were rendered with recipe versions %s, now %s: rendering them afresh"
                % (style, versions, current_versions()))
            os.remove(listing_path)
    if not os.path.exists(listing_path):
        if not os.path.exists(os.path.join(corpus_module.DEFAULT_ROOT, corpus_module.MANIFEST)):
            log("no corpus yet: building it (semantic-enhance data corpus)")
            corpus_module.build_corpus(log=log)
        log("no %s pairs yet: building them (semantic-enhance data pairs --style %s)" % (style, style))
        build_pairs(style, root, log=log)
    return root
