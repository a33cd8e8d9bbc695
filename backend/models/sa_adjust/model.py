"""The product entry of ``sa-adjust``: one weights file per style, served through the seam.

predict: the network gives output Lab for every pixel of the <= 512 px view, under each of the K presets,
and the K-way adjustment map; for each preset a local affine sRGB->sRGB map is fitted to that prediction
(``upsample.fit_local_affine``), so what reaches full resolution is a ``ColourTransformMaps``, never pixels.
apply: ``transforms.apply_colour_transforms`` mixes the presets by the adjustment map carried edge-aware to
full resolution (or by the user's own map), then strength and selection blend with the original; the
watercolor style's brush strokes follow the colour mapping (Yan et al.) and travel in the presets' colour
maps (imaging/brush.py), so they follow the photo's edges at any size.
"""

import json

import torch

from ... import styles as style_registry
from ...imaging import brush as strokes
from ...imaging import mixing, pixels, transforms, upsample
from .. import register
from ..base import Model, Option, Outcome, OutputImage, View
from .network import SAAdjustNet, predict_low_res

STYLES = style_registry.LOCAL


def weights_name(style):
    return "sa-adjust-%s.safetensors" % style


def predict_maps(net, view, brush=False):
    """The network on the low-resolution view -> ColourTransformMaps (K presets and the predicted map).

    ``brush`` (watercolor): each preset's colours are flattened within the brush strokes found on the
    view's styled colours, so the strokes travel to full resolution as colour maps (imaging/brush.py)."""
    outputs, probabilities = predict_low_res(net, view.features, view.rgb)
    if brush:
        styled = (outputs * probabilities.unsqueeze(1)).sum(0, keepdim=True) if probabilities is not None else outputs
        presets = [strokes.brush_coefficients(view.rgb, outputs, strokes.superpixel_labels(styled)).cpu()]
    else:
        presets = [upsample.fit_local_affine(view.rgb, out.unsqueeze(0)).cpu() for out in outputs]
    maps = transforms.ColourTransformMaps(torch.cat(presets, dim=1), adjustment_map=(
        probabilities.cpu() if probabilities is not None else None), guide=view.rgb.cpu())
    if maps.k > 1 and maps.radius > 0:
        maps.guided_map()  # the edge-aware map's filter is fitted here, at low resolution
    return maps


def render(rgb, maps, mix, on_progress=None):
    """ColourTransformMaps on a full-resolution planar sRGB (3, H, W) image, blended by ``mix``."""
    return transforms.apply_colour_transforms(rgb, maps, mix, on_progress=on_progress)


def adjust(net, rgb, device="cpu", strength=1.0, selection=None, personal_map=None, edge_radius=None):
    """The product path for any network (trainers and evaluation): planar sRGB (3, H, W) of any size ->
    (adjusted (3, H, W), the predicted adjustment map (K, h, w) or None). ``personal_map`` (K, H, W)
    replaces the predicted map; ``selection`` (1, H, W) limits where the style applies; ``edge_radius``
    overrides mixing.EDGE_RADIUS (0: the map upsampled bilinearly)."""
    view = View(pixels.Layer(rgb, None, None, 3, pixels.PERCEPTUAL), device)
    maps = predict_maps(net, view, has_brush(net.config.get("style")))
    maps.edge_radius = edge_radius
    mix = mixing.Mix(strength=strength, selection=selection, user_map=personal_map)
    return render(rgb, maps, mix), maps.adjustment_map


def has_brush(style):
    return getattr(style_registry.STYLES.get(style), "brush", False)


@register
class SAAdjust(Model):
    id = "sa-adjust"
    version = "3"
    paper = "Nam & Kim 2017, Deep Semantics-Aware Photo Adjustment"
    summary = "Learned local styles with a K-way semantic adjustment map you can repaint"
    tasks = ("adjust",)
    options = (Option("strength", "how much of the style to apply, 0..1", "1.0"),)
    default_rank = 0

    def __init__(self):
        super().__init__()
        self.nets = {}

    @property
    def styles(self):
        from ... import weights

        return tuple(s for s in STYLES if weights.entry(weights_name(s)) is not None) or STYLES

    @property
    def weights(self):
        from ... import weights

        present = tuple(weights_name(s) for s in STYLES if weights.entry(weights_name(s)) is not None)
        return present or (weights_name(STYLES[0]),)

    def load(self, device):
        from ... import weights

        self.nets = {}
        for style in self.styles:
            tensors, metadata = weights.load_with_metadata(weights_name(style))
            net = SAAdjustNet(json.loads(metadata["config"]))
            net.load_state_dict(tensors, strict=True)
            self.nets[style] = net.to(device).eval()

    @staticmethod
    def presets(request):
        """(selected, unselected) preset indices of a personalisation request, names resolved and the
        style's defaults filled in."""
        style = style_registry.get(request.style)
        selected = style.selected if request.selected_preset is None else request.selected_preset
        unselected = style.unselected if request.unselected_preset is None else request.unselected_preset
        return style.preset_index(selected), style.preset_index(unselected)

    def check(self, request):
        super().check(request)
        if request.personal:
            k = len(style_registry.get(request.style).presets)
            mixing.check_user_map(request.mask_channels, k, *self.presets(request))

    def predict(self, view, request):
        return predict_maps(self.nets[request.style], view, style_registry.get(request.style).brush)

    def apply(self, layer, maps, request):
        net = self.nets[request.style]
        style = style_registry.get(request.style)
        mix = self.mix(request, layer)
        if request.personal:
            mix.user_map = mixing.user_map(pixels.decode_mask(request.mask), net.k, *self.presets(request))
            maps.adjustment_map = None
        result = render(layer.rgb, maps, mix, on_progress=request.stage(0.4, 0.85, "applying"))
        outcome = Outcome(result=result, parameters={
            "model": self.id, "version": self.version, "style": request.style, "strength": request.strength,
            "k": net.k, "presets": list(style.presets), "personalised": request.personal,
            "variant": net.config.get("variant", "")})
        if request.return_maps and maps.adjustment_map is not None:
            request.progress(0.85, "maps")
            full = maps.full_resolution_map(layer.rgb)
            for k, name in enumerate(style.presets[:full.shape[0]]):
                outcome.images.append(OutputImage("adjustment_map/%d" % k, pixels.quantise_map(full[k])))
                outcome.map_names.append(name)
        return outcome
