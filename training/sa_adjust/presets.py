"""The trained adjustment map's channels put in the order of the style's preset names.

The K channels of the map are learnt without labels (the paper's semantic adjustment map is latent), so a
training run may put the subject in any channel. ``backend/styles.py`` names the channels ("subject",
"sky", "vegetation", "background") and the GIMP plug-in, the CLI and personalisation address them by
those names; so after training, the channels are permuted to follow them: "subject" is the channel whose
map best follows the salient-foreground cue on a few package photos, "sky" the sky cue's, "vegetation"
the vegetation cue's, the rest in their trained order. The permutation is exact (the map head's rows and
the presets' V rows move together), so predictions do not change, only their order.
"""

import numpy as np
import torch

from backend import styles as style_registry
from backend.imaging import upsample

CUE_OF_PRESET = {"subject": "foreground", "sky": "sky", "vegetation": "vegetation"}


def probe_photos():
    """Five package photos with a subject, sky or vegetation: (3, H, W) sRGB in [0, 1]."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    images = [data.astronaut(), data.coffee(), data.chelsea(), load_sample_image("china.jpg"),
              load_sample_image("flower.jpg")]
    return [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255 for image in images]


def correlations(net, photos):
    """{cue: [mean over photos of the correlation between channel k of the predicted map and the cue]}."""
    from backend.models import sa_adjust as sa
    from training.data import cues as cue_module

    result = {}
    for rgb in photos:
        _, probabilities = sa.adjust(net, rgb)
        low = upsample.downscale(rgb)[0]
        cues = cue_module.compute_cues((low.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        for cue in sorted(set(CUE_OF_PRESET.values())):
            m = torch.as_tensor(np.asarray(cues[cue]), dtype=torch.float32).flatten()
            m = m - m.mean()
            for k in range(net.k):
                p = probabilities[k].flatten() - probabilities[k].mean()
                value = float((p * m).mean() / (p.std() * m.std() + 1e-6))
                result.setdefault(cue, [0.0] * net.k)[k] += value / len(photos)
    return result


def order(style, table):
    """Channel order (new channel i <- trained channel order[i]) giving ``style``'s names their cues."""
    names = style_registry.get(style).presets
    free, chosen = list(range(len(names))), {}
    for name in ("subject", "sky", "vegetation"):     # the subject first: it is what every style is about
        if name in names:
            best = max(free, key=lambda k: table[CUE_OF_PRESET[name]][k])
            chosen[name] = best
            free.remove(best)
    return [chosen[name] if name in chosen else free.pop(0) for name in names]


def permute(net, channels):
    """Reorder the map's channels in place: new channel i is trained channel ``channels[i]``."""
    index = torch.tensor(channels)
    with torch.no_grad():
        net.map_logits.weight.copy_(net.map_logits.weight[index])
        net.map_logits.bias.copy_(net.map_logits.bias[index])
        net.V.copy_(net.V[index])
    return net


def name_presets(net, style, photos=None):
    """Permute a trained S-variant net so its channels follow ``style``'s preset names; returns the order
    (None for a net without an adjustment map: the other variants and the global model)."""
    if not getattr(net, "semantic_map", False):
        return None
    channels = order(style, correlations(net, photos or probe_photos()))
    permute(net, channels)
    return channels
