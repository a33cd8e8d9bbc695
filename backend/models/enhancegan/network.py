"""EnhanceGAN's generator heads (Deng, Loy & Tang 2018) on the shared, frozen backbone, and the crop scorer.

The paper's generator is a backbone feature map followed, per enhancer, by a 1x1 convolution that gives at
every position a parameter vector and a probability; the top K = 3 positions by probability are kept,
their scores softmaxed and their parameter vectors averaged with those weights (top-K pooling, as in the
authors' code). Here the map is the shared EfficientNet-Lite0's stride-32 map with its stride-16 map
average-pooled onto it (432 channels): the backbone is frozen (the paper fine-tunes its ResNet), so each
head has one hidden 1x1 layer of ``HIDDEN`` channels before its output layer (a deviation, in the card).

Heads: ``piecewise`` 6 parameters (enhancers.RANGES), ``filters`` 3 mixing weights (sigmoid), ``crop``
4 numbers (scale x, scale y in [0.3, 0.999], the centre's translation clamped to +-(1 - s)).

``FilterNet`` is the paper's small 3-layer CNN that approximates one colour filter (1x1 convolutions: the
filters are pointwise), trained to match ``enhancers.photo_filter``.

``CropScorer`` goes beyond the paper's single box: candidate boxes are read from the same feature pyramid
(RoI-sampled: inside mean and spread, which the critic's head also scores, and the step across each side
of the box), and a small MLP predicts how well each box frames the photo. One backbone pass scores all.
"""

import torch
from torch import nn
import torch.nn.functional as F

from ...imaging import enhancers

TOP_K = 3
HIDDEN = 128
FEATURE_CHANNELS = 112 + 320
CROP_SCALE = (0.3, 0.999)
FILTER_HIDDEN = 16


def head_map(pyramid):
    """{stride: (N, C, h, w)} -> the heads' map (N, 432, h32, w32): stride 32 with stride 16 pooled onto it."""
    coarse = pyramid[32].float()
    fine = F.adaptive_avg_pool2d(pyramid[16].float(), coarse.shape[-2:])
    return torch.cat((fine, coarse), 1)


class TopKHead(nn.Module):
    """1x1 layers -> (params, probability) per position; the top-K positions' params, softmax-weighted."""

    def __init__(self, outputs, hidden=HIDDEN, k=TOP_K):
        super().__init__()
        self.k = k
        self.hidden = nn.Conv2d(FEATURE_CHANNELS, hidden, 1)
        self.out = nn.Conv2d(hidden, outputs + 1, 1)

    def forward(self, fmap):
        x = self.out(F.relu(self.hidden(fmap))).flatten(2)          # (N, P + 1, positions)
        params, logits = x[:, :-1], x[:, -1]
        top, index = logits.topk(min(self.k, logits.shape[-1]), dim=-1)
        weights = F.softmax(top, dim=-1)                            # (N, k)
        chosen = params.gather(2, index.unsqueeze(1).expand(-1, params.shape[1], -1))
        return (chosen * weights.unsqueeze(1)).sum(-1)              # (N, P)


class FilterNet(nn.Module):
    """The paper's 3-layer CNN approximating one colour filter: 1x1 convolutions 3 -> 16 -> 16 -> 3, residual."""

    def __init__(self, hidden=FILTER_HIDDEN):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                    nn.Conv2d(hidden, 3, 1))

    def forward(self, rgb):
        return (rgb + self.layers(rgb)).clamp(0, 1)


def crop_box(raw):
    """Crop head outputs (N, 4) -> boxes (N, 4) x, y, width, height normalised to the image."""
    low, high = CROP_SCALE
    scale = low + (F.hardtanh(raw[:, :2]) + 1) * 0.5 * (high - low)
    centre = F.hardtanh(raw[:, 2:]) * (1 - scale)                    # in [-1, 1] units of the image
    corner = (centre + 1) * 0.5 - scale * 0.5
    return torch.cat((corner, scale), 1)


class Generator(nn.Module):
    """The three heads and the three filter approximations, in one module (one weights file)."""

    def __init__(self):
        super().__init__()
        self.piecewise = TopKHead(6)
        self.filters = TopKHead(3)
        self.crop = TopKHead(4)
        self.filter_nets = nn.ModuleList(FilterNet() for _ in range(3))

    def curves(self, fmap):
        """The piecewise enhancer's six parameters (N, 6), each in its range (enhancers.RANGES)."""
        return enhancers.in_range(self.piecewise(fmap.float()))

    def filter_weights(self, fmap):
        """The deep-filtering enhancer's mixing weights (N, 3) in [0, 1]."""
        return torch.sigmoid(self.filters(fmap.float()))

    def filtered(self, rgb, weights):
        """The three filter CNNs on ``rgb`` (N, 3, H, W), mixed by ``weights``."""
        return enhancers.mix_filters(rgb, [net(rgb) for net in self.filter_nets], weights)


# ---- the crop scorer ---------------------------------------------------------------------------------
SAMPLES = 4          # an S x S grid of samples inside each box
EDGE = 0.08          # the strips across each side: this share of the box's side inward and outward
SIDES = 4
GEOMETRY = 5         # x, y, width, height, log aspect
LINE = 3             # per side: the step across its line, that step over the steps beside it, on the border


def _sample(fmap, points):
    """fmap (1, C, h, w), points (B, P, 2) in [0, 1] (x, y) -> (B, C, P), bilinear, border-clamped."""
    grid = (points * 2 - 1).unsqueeze(1)                             # (B, 1, P, 2)
    return F.grid_sample(fmap.expand(points.shape[0], -1, -1, -1), grid, mode="bilinear",
                         padding_mode="border", align_corners=False)[:, :, 0]


def roi_features(pyramid, boxes):
    """The features of candidate ``boxes`` (B, 4) (normalised x, y, w, h) on one image's pyramid:
    (pooled (B, 2 * 432): the critic's layout, mean and spread inside the box on strides 16 and 32;
    edges (B, 4 * 112): per side, stride-16 features just inside minus just outside)."""
    t = (torch.arange(SAMPLES, dtype=boxes.dtype) + 0.5) / SAMPLES
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    x, y, w, h = (boxes[:, i:i + 1] for i in range(4))
    inside = torch.stack((x + gx.flatten() * w, y + gy.flatten() * h), -1)   # (B, S*S, 2)
    pooled = []
    for stride in (16, 32):
        values = _sample(pyramid[stride].float(), inside)
        pooled += [values.mean(-1), values.std(-1, unbiased=False)]
    along = t.view(1, -1)
    sides = []
    fine = pyramid[16].float()
    for side in range(SIDES):
        if side < 2:      # left, right: x fixed, y along
            edge = x if side == 0 else x + w
            direction = 1.0 if side == 0 else -1.0
            ys = y + along * h
            points_in = torch.stack(((edge + direction * EDGE * w).expand_as(ys), ys), -1)
            points_out = torch.stack(((edge - direction * EDGE * w).expand_as(ys), ys), -1)
        else:             # top, bottom
            edge = y if side == 2 else y + h
            direction = 1.0 if side == 2 else -1.0
            xs = x + along * w
            points_in = torch.stack((xs, (edge + direction * EDGE * h).expand_as(xs)), -1)
            points_out = torch.stack((xs, (edge - direction * EDGE * h).expand_as(xs)), -1)
        # an edge on the image's border has nothing outside: the difference is then zero
        sides.append((_sample(fine, points_in) - _sample(fine, points_out)).abs().mean(-1))
    return torch.cat(pooled, 1), torch.cat(sides, 1)


INPUT_GROUPS = {"pooled": 2 * FEATURE_CHANNELS, "edges": SIDES * 112, "geometry": GEOMETRY, "lines": SIDES * LINE,
                "critic": 1}   # the scorer's inputs, in scorer_inputs' order


def input_mask(groups):
    """A bool mask over scorer_inputs' columns keeping the named INPUT_GROUPS."""
    return torch.cat([torch.full((size,), name in groups) for name, size in INPUT_GROUPS.items()])


class CropScorer(nn.Module):
    """Candidate features -> how well each box frames the photo (a logit; trained on IoU with the true frame).
    Inputs (``INPUT_GROUPS``, a subset chosen on the validation split is kept by ``keep``): the box's pooled
    features, its edge steps, its geometry, the line evidence of its sides, and the critic's score of the
    box (from the critic's own head on the same pooled features); standardised."""

    def __init__(self, hidden=HIDDEN, groups=tuple(INPUT_GROUPS)):
        super().__init__()
        keep = input_mask(groups)
        inputs = int(keep.sum())
        self.register_buffer("keep", keep)
        self.register_buffer("feature_mean", torch.zeros(inputs))
        self.register_buffer("feature_std", torch.ones(inputs))
        self.layers = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 1))

    def forward(self, inputs):
        return self.kept_logits(inputs[:, self.keep])

    def kept_logits(self, kept):
        """Logits from inputs already reduced to the kept columns (training keeps them reduced once)."""
        return self.layers((kept - self.feature_mean) / self.feature_std)[:, 0]


def groups_of(keep):
    """The INPUT_GROUPS a keep mask holds (a group is kept whole): how a weights file says what its scorer reads."""
    out, start = [], 0
    for name, size in INPUT_GROUPS.items():
        if bool(keep[start]):
            out.append(name)
        start += size
    return tuple(out)


def geometry(boxes):
    x, y, w, h = boxes.unbind(1)
    return torch.stack((x, y, w, h, torch.log(w / h)), 1)


class LineEvidence:
    """Where a photo meets its margin there is a straight line along which the colour steps. For one image
    (1, 3, h, w) at the view's size: the mean colour step across every pixel column and row, as cumulative
    sums, so the step along any box side costs O(1). Per side: its step (the best of the side's line and
    the lines one pixel either way), that step over the mean step of the lines 3 to 6 pixels beside it
    (a line stands out from texture), and whether the side lies on the image's border (no line there)."""

    def __init__(self, rgb):
        image = rgb[0].float()
        self.height, self.width = image.shape[1:]
        across_x = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(0)          # (h, w - 1): between columns
        across_y = (image[:, 1:] - image[:, :-1]).abs().mean(0)                # (h - 1, w): between rows
        self.columns = F.pad(across_x.cumsum(0), (0, 0, 1, 0))                 # (h + 1, w - 1)
        self.rows = F.pad(across_y.cumsum(1), (1, 0, 0, 0))                    # (h - 1, w + 1)

    @staticmethod
    def _along(sums, line, start, stop, lines):
        """Mean step on lines ``line`` (B,) between ``start`` and ``stop`` (B,) (pixel indices along)."""
        line = line.clamp(0, lines - 1)
        return (sums[stop, line] - sums[start, line]) / (stop - start).clamp_min(1)

    def features(self, boxes):
        x0 = boxes[:, 0] * self.width
        y0 = boxes[:, 1] * self.height
        x1 = x0 + boxes[:, 2] * self.width
        y1 = y0 + boxes[:, 3] * self.height
        out = []
        for edge, limit, sums, start, stop, lines, transpose in (
                (x0, self.width, self.columns, y0, y1, self.width - 1, False),
                (x1, self.width, self.columns, y0, y1, self.width - 1, False),
                (y0, self.height, self.rows, x0, x1, self.height - 1, True),
                (y1, self.height, self.rows, x0, x1, self.height - 1, True)):
            table = sums.T if transpose else sums
            a, b = start.round().long().clamp(0, table.shape[0] - 1), stop.round().long().clamp(0, table.shape[0] - 1)
            line = edge.round().long() - 1                   # the step between pixel line-1 and line
            step = torch.stack([self._along(table, line + d, a, b, lines) for d in (-1, 0, 1)]).max(0).values
            beside = torch.stack([self._along(table, line + d, a, b, lines) for d in (-6, -5, -4, -3, 3, 4, 5, 6)]).mean(0)
            border = ((edge < 1.5) | (edge > limit - 1.5)).float()
            out += [step * (1 - border), step / (beside + 0.01) * (1 - border), border]
        return torch.stack(out, 1)


def scorer_inputs(pyramid, boxes, critic_head, aspect=1.0, lines=None):
    """The CropScorer's inputs for ``boxes`` on one pyramid; ``aspect`` = image width / height (so the
    geometry's aspect is the box's in pixels); ``lines`` the LineEvidence of the view."""
    from ..critic.network import mean_score

    pooled, edges = roi_features(pyramid, boxes)
    with torch.no_grad():
        critic = mean_score(critic_head(pooled)).unsqueeze(1)
    shape = geometry(boxes)
    shape[:, 4] += float(torch.log(torch.tensor(aspect)))
    return torch.cat((pooled, edges, shape, lines.features(boxes), critic), 1)


def candidate_boxes(aspect=0.0, image_aspect=1.0, scales=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0), steps=5):
    """The grid of candidate crops (as grid-anchor croppers do): widths and heights from ``scales`` of the
    image (every pair, or those of pixel ``aspect`` = w / h when one is asked), each placed at ``steps`` x
    ``steps`` positions. Returns (B, 4) normalised boxes, duplicates removed."""
    boxes = set()
    for sw in scales:
        for sh in scales:
            w, h = sw, sh
            if aspect:
                # the box of this aspect (in pixels) with the larger of the two sizes that fits
                h = min(1.0, w * image_aspect / aspect)
                w = h * aspect / image_aspect
                if sh != scales[-1]:
                    continue
            if w < 0.3 or h < 0.3 or (not aspect and max(w / h, h / w) * max(image_aspect, 1 / image_aspect) > 4):
                continue
            for i in range(steps):
                for j in range(steps):
                    x = (1 - w) * i / (steps - 1)
                    y = (1 - h) * j / (steps - 1)
                    boxes.add((round(x, 4), round(y, 4), round(w, 4), round(h, 4)))
    return torch.tensor(sorted(boxes), dtype=torch.float32)
