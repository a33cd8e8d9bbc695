"""The product entry of ``enhancegan``: ``enhance`` (piecewise colour or deep filtering) and ``crop``.

Predict on the <= 512 px view, one backbone pass (shared and cached with every other head); apply at full
resolution in the layer's own bit depth:
- piecewise: the six curve parameters are resolution-free; the curves run exactly on layers up to 4 MP,
  and above that exactly on a box-averaged copy (long side <= 750 px) carried to full resolution by local
  affine colour maps (``transforms.carry_pointwise``, the seam's shared application);
- deep filtering: the three filter CNNs run on the view, mixed by the predicted weights, and the result is
  carried to full resolution as one colour matrix fitted there (the Photo Filters are linear in RGB up to
  clipping, so the matrix reproduces the CNN mix: the fit's error is in ``parameters``);
- crop: ranked boxes from the grid of candidates, the crop head's box and a refinement (cropping.py).
"""

import math

import torch

from .. import register
from ..base import Model, Option, Outcome, RequestError
from ..critic.model import WEIGHTS as CRITIC_WEIGHTS, load_head, refuse_too_small
from ...imaging import enhancers, transforms, upsample
from .cropping import rank
from .network import CropScorer, Generator, groups_of, head_map

WEIGHTS = "enhancegan.safetensors"
METHODS = {"piecewise": "piecewise colour", "deep-filter": "deep filtering"}
MAX_COUNT = 20
MIN_CROP_AREA = 0.15     # an aspect ratio whose largest box covers less of the layer than this is refused


def parts_from(tensors):
    """The weights file's tensors -> (Generator, CropScorer) in eval mode (one file: "generator.*", "scorer.*")."""
    generator, scorer = Generator(), CropScorer(groups=groups_of(tensors["scorer.keep"]))
    generator.load_state_dict({k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")})
    scorer.load_state_dict({k[len("scorer."):]: v for k, v in tensors.items() if k.startswith("scorer.")})
    return generator.eval(), scorer.eval()


def check_aspect(aspect, width, height):
    """Refuse an aspect ratio (pixel width / height; 0 = free) that cannot make a useful crop of the layer."""
    if aspect == 0:
        return
    if not (aspect > 0) or math.isinf(aspect):
        raise ValueError("the aspect ratio is width / height, a positive number (or 0 for free), got %g" % aspect)
    if width and height:
        image_aspect = width / height
        share = min(aspect / image_aspect, image_aspect / aspect)
        if share < MIN_CROP_AREA:
            raise ValueError("an aspect ratio of %.3g cannot fit this %d x %d layer: its largest crop would keep "
                             "only %.0f%% of it (at least %.0f%% is needed)"
                             % (aspect, width, height, 100 * share, 100 * MIN_CROP_AREA))


@register
class EnhanceGAN(Model):
    id = "enhancegan"
    version = "1"
    paper = "Deng, Loy & Tang 2018, Aesthetic-Driven Image Enhancement by Adversarial Learning"
    summary = "Piecewise colour or deep-filter enhancement, and ranked aesthetic crops"
    tasks = ("enhance", "crop")
    weights = (WEIGHTS, CRITIC_WEIGHTS)
    options = (Option("strength", "0..1: blend of the result with the original", "1"),)

    def __init__(self):
        super().__init__()
        self.generator = self.scorer = self.critic_head = None

    @property
    def styles(self):
        return tuple(METHODS)

    def load(self, device):
        from ... import weights

        self.generator, self.scorer = (part.to(device) for part in parts_from(weights.load(WEIGHTS)))
        self.critic_head = load_head(device=device)

    def check(self, request):
        super().check(request)
        if request.kind == "enhance" and request.style not in METHODS:
            raise ValueError("enhancegan has no method %r; its methods are: %s" % (request.style, ", ".join(METHODS)))
        if request.kind == "crop":
            if not 1 <= request.crop.count <= MAX_COUNT:
                raise ValueError("count must be between 1 and %d, got %d" % (MAX_COUNT, request.crop.count))
            check_aspect(request.crop.aspect, request.width, request.height)
        refuse_too_small(request.width, request.height)

    # -- predict on the view -----------------------------------------------------------------------
    def predict(self, view, request):
        refuse_too_small(view.layer.width, view.layer.height, RequestError)
        pyramid = view.features
        if request.kind == "crop":
            boxes = rank(view.rgb, pyramid, self.scorer, self.critic_head,
                         self.generator.crop, count=request.crop.count, aspect=request.crop.aspect)
            return {"crops": boxes}
        with torch.no_grad():
            fmap = head_map(pyramid)
            if request.style == "piecewise":
                return {"piecewise": enhancers.Piecewise.from_tensor(self.generator.curves(fmap)[0])}
            weights = self.generator.filter_weights(fmap)
            rgb = view.rgb.float()
            mixed = self.generator.filtered(rgb, weights)
            matrix = upsample.fit_global_affine(rgb, mixed)
            carried = torch.einsum("ck,nkhw->nchw", matrix[:, :3], rgb) + matrix[:, 3].view(1, 3, 1, 1)
            error = (carried.clamp(0, 1) - mixed).abs()
        return {"weights": [float(w) for w in weights[0]], "matrix": matrix,
                "fit_error": {"mean": float(error.mean()), "max": float(error.max())}}

    # -- apply at full resolution ------------------------------------------------------------------
    def apply(self, layer, params, request):
        base = {"model": self.id, "version": self.version}
        if request.kind == "crop":
            boxes = params["crops"]
            crops = [{"x": b.x, "y": b.y, "width": b.width, "height": b.height, "score": b.score} for b in boxes]
            return Outcome(crops=crops, parameters=dict(base, count=request.crop.count, aspect_ratio=request.crop.aspect,
                                                        crops=boxes.to_json(layer.width, layer.height)["crops"]))
        mix = self.mix(request, layer)
        report = request.stage(0.4, 0.9, "applying")
        if request.style == "piecewise":
            curves = params["piecewise"]
            values = curves.tensor()[None]
            result = transforms.carry_pointwise(layer.rgb, lambda rgb: enhancers.piecewise(rgb[None], values)[0],
                                                mix, on_progress=report)
            return Outcome(result=result, parameters=dict(base, method="piecewise", piecewise=curves.to_json(),
                                                          label=curves.label()))
        result = transforms.apply_global_affine(layer.rgb, params["matrix"], mix, on_progress=report)
        weights = dict(zip(enhancers.PHOTO_FILTERS, (round(w, 4) for w in params["weights"])))
        label = ", ".join("%s %.0f%%" % (enhancers.FILTER_LABELS[k], 100 * w) for k, w in weights.items())
        return Outcome(result=result, parameters=dict(base, method="deep-filter", filter_weights=weights, label=label,
                                                      carried_by_matrix=params["fit_error"]))
