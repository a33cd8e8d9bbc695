"""The product entry of ``critic``: the ``score`` task. Scoring predicts on the low-resolution view and
has nothing to apply at full resolution: the Outcome carries only the scores, the critic's and, as an
independent second opinion, BRISQUE's (``brisque.py``; no distribution, lower is better)."""

import torch

from .. import register
from . import brisque
from ..base import Model, Outcome, RequestError
from .network import critic_view, head_from_tensors, mean_score, pooled_features

WEIGHTS = "aesthetic-critic.safetensors"
MIN_SIDE = 32   # below this the backbone's stride-32 map is a single cell or less: nothing to judge


def score_distribution(head, rgb):
    """(1, 3, H, W) sRGB in [0, 1] -> (10,) score distribution, through the shared backbone cache."""
    from ..backbones.cache import backbone_features

    with torch.no_grad():
        return head(pooled_features(backbone_features(critic_view(rgb))))[0]


def refuse_too_small(width, height, error=ValueError):
    """Raise ``error`` with a sentence when the critic cannot judge a layer this small (ValueError from a
    setup, before any upload; RequestError once the pixels are there). Unknown sizes (0) pass."""
    if width and height and min(width, height) < MIN_SIDE:
        raise error("the layer is %d x %d pixels: the critic needs at least %d pixels on each side to score it"
                    % (width, height, MIN_SIDE))


def load_head(path=None, device="cpu"):
    """The critic's head in eval mode: the shipped weights (verified against the manifest), or an unshipped
    file a trainer wrote. Its size is read from the tensors."""
    from ... import weights

    if path:
        from safetensors.torch import load_file
        tensors = load_file(path)
    else:
        tensors = weights.load(WEIGHTS)
    return head_from_tensors(tensors).to(device).eval()


@register
class Critic(Model):
    id = "critic"
    version = "2"
    paper = "NIMA's head (Talebi & Milanfar 2018) trained on clean versus degraded corpus photos, for PIEA"
    summary = ("Aesthetic score 1..10 (mean of a 10-bin distribution), from clean-versus-degraded training; "
               "and BRISQUE (LIVE model, 0..100, lower is better)")
    tasks = ("score",)
    weights = (WEIGHTS, brisque.MODEL_FILE, brisque.RANGE_FILE)
    strength = False

    def __init__(self):
        super().__init__()
        self.head = None
        self.brisque = None

    def load(self, device):
        self.head = load_head(device=device)
        self.brisque = brisque.load()

    def check(self, request):
        super().check(request)
        refuse_too_small(request.width, request.height)

    def predict(self, view, request):
        refuse_too_small(view.layer.width, view.layer.height, RequestError)
        # BRISQUE on the same view (long side 512 px): it depends on scale, so every photo is judged
        # at one size; on a flat layer it is undefined and left out
        return score_distribution(self.head, view.rgb), self.brisque.score(view.rgb)

    def apply(self, layer, params, request):
        distribution, brisque_value = params
        value = float(mean_score(distribution[None])[0])
        scores = [{"name": "critic", "value": round(value, 4),
                   "distribution": [round(float(p), 6) for p in distribution]}]
        if brisque_value is not None:
            scores.append({"name": "brisque", "value": round(brisque_value, 4), "distribution": []})
        return Outcome(scores=scores, parameters={"model": self.id, "version": self.version})
