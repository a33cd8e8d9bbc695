"""One backbone pass per image: features cached by the image's content hash, shared by every head.

    >>> features = backbone_features(low_res)                       # doctest: +SKIP
    >>> features[8].shape                                           # doctest: +SKIP
    torch.Size([1, 40, 64, 64])
    >>> backbone_features(low_res) is features                      # a second head: no second pass
    True

``low_res`` is the ~512 px sRGB copy (N, 3, H, W) in [0, 1] that the heads see (ARCHITECTURE.md §2).
Backbones are built once per (name, device) on first use. The cache is a small thread-safe LRU
(``SEMANTIC_ENHANCE_FEATURE_CACHE`` entries, default 8): entries are a few MB at 512 px. Features
are computed under ``torch.no_grad`` -- this is the inference path; trainers that fine-tune a backbone
call it directly.
"""

import hashlib
import os
import threading
from collections import OrderedDict

import torch

from . import efficientnet, vgg

# name -> (builder(device) -> module with .pyramid, preprocess(rgb01) -> network input)
BACKBONES = {
    "efficientnet-lite0": (lambda device: efficientnet.load_efficientnet_lite0(device=device),
                           efficientnet.preprocess),
    "efficientnet-lite0-dilated": (lambda device: efficientnet.load_efficientnet_lite0(output_stride=8, device=device),
                                   efficientnet.preprocess),
    "vgg16-hed": (lambda device: vgg.load_vgg16_hed(device=device), vgg.preprocess),
    "vgg16-hed-dilated": (lambda device: vgg.load_vgg16_hed(output_stride=8, device=device), vgg.preprocess),
}
DEFAULT_BACKBONE = "efficientnet-lite0"


def content_hash(image):
    """sha256 of a tensor's bytes, shape and dtype (same pixels -> same key, wherever they came from)."""
    data = image.detach().to("cpu").contiguous()
    digest = hashlib.sha256(("%s|%s|" % (tuple(data.shape), data.dtype)).encode())
    digest.update(data.numpy().tobytes() if data.dtype != torch.bfloat16 else data.float().numpy().tobytes())
    return digest.hexdigest()


class FeatureCache:
    """LRU of {(backbone, device, content hash): {stride: tensor}}; counts hits and passes for tests/metrics."""

    def __init__(self, max_entries=8):
        self.max_entries = max_entries
        self._entries = OrderedDict()
        self._models = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.passes = 0

    def model(self, name, device):
        if name not in BACKBONES:
            raise ValueError("unknown backbone %r; known: %s" % (name, ", ".join(BACKBONES)))
        key = (name, str(device))
        with self._lock:
            if key not in self._models:
                self._models[key] = BACKBONES[name][0](device)
            return self._models[key]

    def features(self, image, backbone=DEFAULT_BACKBONE, levels=None):
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError("expected an sRGB (N, 3, H, W) tensor, got shape %s" % (tuple(image.shape),))
        key = (backbone, str(image.device), content_hash(image), tuple(levels or ()))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
        net = self.model(backbone, image.device)
        with torch.no_grad():
            features = net.pyramid(BACKBONES[backbone][1](image.float()))
        if levels:  # keep only what the head reads (VGG's full-resolution conv1 maps are ~50 MB at 512 px)
            features = {level: features[level] for level in levels}
        with self._lock:
            self.passes += 1
            self._entries[key] = features
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return features

    def clear(self):
        with self._lock:
            self._entries.clear()


DEFAULT_CACHE = FeatureCache(int(os.environ.get("SEMANTIC_ENHANCE_FEATURE_CACHE", "8")))


def backbone_features(image, backbone=DEFAULT_BACKBONE, cache=None, levels=None):
    """The backbone's feature pyramid {stride: (N, C, h, w)} for sRGB ``image`` (N, 3, H, W) in [0, 1]
    (only the strides in ``levels`` when given)."""
    return (cache or DEFAULT_CACHE).features(image, backbone, levels)
