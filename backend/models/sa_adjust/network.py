"""The network of ``sa-adjust``: Deep Semantics-Aware Photo Adjustment (Nam & Kim 2017).

The network (``SAAdjustNet``) follows the paper's heads on our shared backbone:
- context features: a hypercolumn of three backbone scales (strides 4, 8, 16), each L2-normalised,
  plus a ReNet (four directional GRU sweeps with batch norm, then a 1x1 conv) over the stride-32 map,
  concatenated and squeezed to 512 by a 1x1 convolution;
- colour features: Lab plus the L2-normalised first-level backbone features (stride 2);
- the low-rank bilinear regression of eq. (2) with tanh, predicting a residual added to the input Lab;
- variant ``S``: a K-way semantic adjustment map p(m_k = 1 | x) replaces the context features; the
  output is the exact expectation over the K presets (eqs. 3-7);
- a scene-parsing head on the context features for multi-task training (``MT``);
- optional (``colour_context``, not in the paper): the colour context of ``imaging/context.py`` (position,
  neighbourhood and photo Lab, two classical saliencies) as one more part of the context, so the map can
  tell a subject by how its colour stands against the photo's, which the backbone's features do not say.

The 1x1 squeeze and V are linear, so they are applied at each level's own resolution and the results
upsampled (bilinear interpolation commutes with linear maps): the same function as the paper's, with
the per-pixel work done at the network's resolution only where it is nonlinear.

What the product does with it (predict at low resolution, apply at full resolution) is in ``model.py``.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ...imaging import color
from ...imaging.context import COLOUR_CHANNELS, SALIENCY_CHANNELS, SUBJECT_CHANNELS, colour_context
from ...imaging.upsample import pixel_grid, sample_maps as sample  # noqa: F401  (sa_adjust's API)
from ..backbones.efficientnet import blocks_after

LAB_UNIT = 100.0          # network Lab units: L, a, b divided by 100 (Huber delta 0.04 = 4 Lab units)
HYPERCOLUMN_LEVELS = (4, 8, 16)
RENET_LEVEL = 32
COLOUR_LEVEL = 2
TUNED_FROM_LEVEL = 16     # a net trained with a tuned last stage runs its own blocks from level 16 to 32
PARSE_CLASSES = ("other", "sky", "vegetation", "person", "foreground")


def l2_normalise(x, dim=1):
    return x / (x.norm(dim=dim, keepdim=True) + 1e-6)


class ReNet(nn.Module):
    """Visin et al. 2015: a bidirectional GRU down/up every column, then one left/right along every row
    of the result (four directional sweeps), batch norm after each, then a 1x1 convolution."""

    def __init__(self, in_channels, hidden=128, out_channels=256):
        super().__init__()
        self.norm_in = nn.BatchNorm2d(in_channels)
        self.vertical = nn.GRU(in_channels, hidden, batch_first=True, bidirectional=True)
        self.norm_mid = nn.BatchNorm2d(2 * hidden)
        self.horizontal = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=True)
        self.norm_out = nn.BatchNorm2d(2 * hidden)
        self.project = nn.Conv2d(2 * hidden, out_channels, 1)

    @staticmethod
    def _sweep(gru, x):
        """Run a bidirectional GRU along the last axis of (N, C, A, B): returns (N, 2h, A, B)."""
        n, c, a, b = x.shape
        sequences = x.permute(0, 2, 3, 1).reshape(n * a, b, c)
        out, _ = gru(sequences)
        return out.reshape(n, a, b, -1).permute(0, 3, 1, 2)

    def forward(self, x):
        x = self.norm_in(x)
        x = self.norm_mid(self._sweep(self.vertical, x.transpose(2, 3)).transpose(2, 3))
        x = self.norm_out(self._sweep(self.horizontal, x))
        return self.project(x)


class LastStageOwner(nn.Module):
    """A head that may own a fine-tuned copy of the backbone's last stage (config ``tuned_last_stage``).

    The paper fine-tunes its backbone at 0.5x the learning rate; here the daemon's shared backbone pass
    stays frozen, and a head trained with ``--tune-last-stage`` recomputes level 32 from level 16 with its
    own blocks 11-15."""

    def __init__(self, config):
        super().__init__()
        self.top = blocks_after(TUNED_FROM_LEVEL) if config.get("tuned_last_stage") else None

    def start_from(self, backbone):
        """Load the tuned last stage from ``backbone``'s own blocks (ImageNet weights), so that level 32
        starts as the backbone's."""
        self.top.load_state_dict(backbone.blocks_after(TUNED_FROM_LEVEL).state_dict())

    def train(self, mode=True):
        """The tuned last stage keeps the ImageNet batch-norm statistics: each image is its own batch."""
        super().train(mode)
        if self.top is not None:
            self.top.eval()
        return self

    def level32(self, features):
        if self.top is None:
            return features[RENET_LEVEL].float()
        x = features[TUNED_FROM_LEVEL].float()
        for block in self.top:
            x = block(x)
        return x


class SAAdjustNet(LastStageOwner):
    """All trainable parts. ``config``: channels of the backbone levels, variant flags, K, rank."""

    def __init__(self, config):
        super().__init__(config)
        self.config = dict(config)
        channels = {int(k): v for k, v in config["channels"].items()}
        rank, context = config["rank"], config["context"]
        self.semantic_map = bool(config["semantic_map"])
        self.k = int(config["k"])
        self.renet = ReNet(channels[RENET_LEVEL], config["renet_hidden"], config["renet_out"])
        # the 1x1 squeeze to `context` channels, one slice per concatenated part
        self.squeeze = nn.ModuleDict({str(level): nn.Conv2d(channels[level], context, 1, bias=False)
                                      for level in HYPERCOLUMN_LEVELS})
        self.squeeze["renet"] = nn.Conv2d(config["renet_out"], context, 1)
        self.colour_context = bool(config.get("colour_context", False))
        self.subject_cue = self.colour_context and bool(config.get("subject_cue", False))
        if self.colour_context:  # starts at zero: the context is the paper's until training finds a use for it
            width = COLOUR_CHANNELS + SALIENCY_CHANNELS + SUBJECT_CHANNELS * self.subject_cue
            self.squeeze["colour"] = nn.Conv2d(width, context, 1, bias=False)
            nn.init.zeros_(self.squeeze["colour"].weight)
        colour_features = 3 + channels[COLOUR_LEVEL]
        self.U = nn.Linear(colour_features, rank)
        self.P = nn.Linear(rank, 3)
        nn.init.zeros_(self.P.weight)  # start at the identity mapping: residual 0
        nn.init.zeros_(self.P.bias)
        if self.semantic_map:
            self.map_logits = nn.Conv2d(context, self.k, 1)
            self.V = nn.Parameter(torch.randn(self.k, rank) * 0.5)   # V^T e_k: one row per preset
            self.c = nn.Parameter(torch.zeros(rank))
        else:
            self.V = nn.Conv2d(context, rank, 1)                       # V^T f_cxt + c
        self.parse = nn.Conv2d(context, len(PARSE_CLASSES), 1)

    # -- context ---------------------------------------------------------------------------------
    def colour_maps(self, lab):
        """The colour-context part of a photo's Lab (1, 3, h, w; network units), or None for the paper's
        net. Fixed maths of the photo alone, so a trainer computes it once per sample, not once per step."""
        return colour_context(lab.float(), saliency=True, subject=self.subject_cue) if self.colour_context else None

    def _parts(self, features, colour=None):
        """The parts of the context, at their own resolutions: three hypercolumn levels and ReNet (each
        L2-normalised), and ``colour`` (from ``colour_maps``) if the net reads the colour context."""
        parts = {str(level): l2_normalise(features[level].float()) for level in HYPERCOLUMN_LEVELS}
        parts["renet"] = l2_normalise(self.renet(self.level32(features)))
        if self.colour_context:
            if colour is None:
                raise ValueError("this network reads the photo's colour context: pass its colour_maps(lab)")
            parts["colour"] = colour
        return parts

    def _heads(self):
        heads = {"parse": self.parse}
        heads["map_logits" if self.semantic_map else "V"] = self.map_logits if self.semantic_map else self.V
        return heads

    def head_maps(self, features, colour=None):
        """Every linear head on the context, as maps at each part's own resolution.

        head(squeeze(concat(parts))) = sum over parts of (W_head W_part) part: composing the two 1x1
        convolutions first means the 512-channel context is never materialised per pixel, and the
        (linear) bilinear upsampling is done on the few head channels only. Returns {head: [(map), ...]}
        plus the constant bias of each head."""
        parts = self._parts(features, colour)
        maps = {}
        for name, head in self._heads().items():
            w_head = head.weight[:, :, 0, 0]
            bias = head.bias + w_head @ self.squeeze["renet"].bias
            maps[name] = ([F.conv2d(part, (w_head @ self.squeeze[key].weight[:, :, 0, 0])[:, :, None, None])
                           for key, part in parts.items()], bias)
        return maps

    @staticmethod
    def heads_at(maps, positions):
        """Sample the head maps at positions (N, P, 2) and sum the parts: {head: (N, P, C)}."""
        return {name: sum(sample(m, positions) for m in part_maps) + bias for name, (part_maps, bias) in maps.items()}

    # -- per-pixel regression ---------------------------------------------------------------------
    def colour_features(self, lab, level2):
        """lab (N, P, 3) in network units; level2 (N, P, C) sampled first-level features."""
        return torch.cat([lab, l2_normalise(level2, dim=-1)], dim=-1)

    def presets(self, colour_features):
        """S variant: output residual under every preset, (N, P, K, 3)."""
        u = torch.tanh(self.U(colour_features))                               # (N, P, rank)
        v = torch.tanh(self.V + self.c)                                        # (K, rank)
        # P^T (u o v_k) = (P^T diag(v_k)) u: one (3K x rank) matrix instead of K x rank products per pixel
        weight = (self.P.weight.unsqueeze(0) * v.unsqueeze(1)).reshape(-1, u.shape[-1])
        out = F.linear(u, weight, self.P.bias.repeat(self.k))
        return torch.tanh(out.reshape(*u.shape[:-1], self.k, 3))               # (N, P, K, 3)

    def residual(self, colour_features, v_pre):
        """Plain variant: v_pre (N, P, rank) is V^T f_cxt + c at the pixels."""
        u = torch.tanh(self.U(colour_features))
        return torch.tanh(self.P(u * torch.tanh(v_pre)))


def forward_pixels(net, features, lab_at, positions, colour=None):
    """Everything the losses need at a set of pixels.

    features: backbone pyramid; lab_at (N, P, 3) input Lab (network units) at those pixels;
    positions (N, P, 2); colour the photo's ``net.colour_maps(lab)`` (None for the paper's net).
    Returns dict with 'output' (N, P, 3) and, per variant, 'presets' (N, P, K, 3)
    and 'map' (N, P, K) probabilities, plus 'parse' logits (N, P, classes).
    """
    heads = net.heads_at(net.head_maps(features, colour), positions)
    colour = net.colour_features(lab_at, sample(features[COLOUR_LEVEL].float(), positions))
    result = {"parse": heads["parse"]}
    if net.semantic_map:
        probabilities = torch.softmax(heads["map_logits"], dim=-1)
        presets = lab_at.unsqueeze(-2) + net.presets(colour)
        result.update(presets=presets, map=probabilities,
                      output=(probabilities.unsqueeze(-1) * presets).sum(-2))
    else:
        result["output"] = lab_at + net.residual(colour, heads["V"])
    return result


def network_lab(rgb):
    """sRGB (N, 3, h, w) -> Lab in network units."""
    return color.rgb_to_lab(rgb) / LAB_UNIT


def rgb_from_network_lab(lab):
    return color.lab_to_rgb(lab * LAB_UNIT)


def backbone_pyramid(backbone, rgb_low):
    from ..backbones.efficientnet import preprocess

    with torch.no_grad():
        return backbone.pyramid(preprocess(rgb_low))


def predict_low_res(net, features, rgb_low, chunk=65536):
    """Dense prediction at the network's resolution.

    Returns (outputs, probabilities): outputs (K', 3, h, w) sRGB, one per preset (K' = 1 for the plain
    variant), and the adjustment map (K, h, w) or None.
    """
    _, _, h, w = rgb_low.shape
    lab = network_lab(rgb_low)
    positions = pixel_grid(h, w, rgb_low.device)
    lab_at = lab.flatten(2).transpose(1, 2)
    with torch.no_grad():
        maps = net.head_maps(features, net.colour_maps(lab))
        level2 = features[COLOUR_LEVEL].float()
        pieces, probability_pieces = [], []
        for start in range(0, h * w, chunk):
            pos, lab_piece = positions[:, start:start + chunk], lab_at[:, start:start + chunk]
            colour = net.colour_features(lab_piece, sample(level2, pos))
            heads = net.heads_at({k: v for k, v in maps.items() if k != "parse"}, pos)
            if net.semantic_map:
                pieces.append(lab_piece.unsqueeze(-2) + net.presets(colour))            # (1, p, K, 3)
                probability_pieces.append(torch.softmax(heads["map_logits"], dim=-1))   # (1, p, K)
            else:
                pieces.append((lab_piece + net.residual(colour, heads["V"])).unsqueeze(-2))
        out_lab = torch.cat(pieces, dim=1)[0]                          # (h*w, K', 3)
        out_lab = out_lab.permute(1, 2, 0).reshape(-1, 3, h, w)
        probabilities = torch.cat(probability_pieces, dim=1)[0].T.reshape(-1, h, w) if probability_pieces else None
    return rgb_from_network_lab(out_lab), probabilities
