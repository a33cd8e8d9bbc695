"""The critic's network: NIMA's head on the shared, frozen EfficientNet-Lite0 pyramid.

NIMA (Talebi & Milanfar 2018) is backbone -> dropout -> FC(10) -> softmax, trained with the EMD loss
(r = 2) between predicted and target score distributions over 1..10. Here the backbone is the shared
ImageNet EfficientNet-Lite0 (frozen, so its features can be cached once per training image), and the
head reads the stride-32 *and* stride-16 maps, each average-pooled and standard-deviation-pooled:
the stride-16 map and the spread statistics keep what the last stage pools away (noise, blur, clipped
exposure), which the degradations the critic is trained on are made of.

The critic sees the photo at ``CRITIC_SIDE`` px on its long side (NIMA: 224): small enough for one
score in well under 0.3 s on two CPU cores, and for PIEA's gradient steps through it.
"""

import torch
from torch import nn
import torch.nn.functional as F

from ...imaging import upsample

CRITIC_SIDE = 256
STRIDES = (16, 32)
CHANNELS = {16: 112, 32: 320}
SCORES = torch.arange(1, 11, dtype=torch.float32)   # the ten bins are the scores 1..10


def critic_view(rgb):
    """(N, 3, H, W) sRGB in [0, 1] -> the critic's copy, long side <= CRITIC_SIDE (area-averaged)."""
    if max(rgb.shape[-2:]) <= CRITIC_SIDE:
        return rgb
    return torch.cat([upsample.downscale(image, CRITIC_SIDE) for image in rgb])


def pooled_features(pyramid):
    """{stride: (N, C, h, w)} -> (N, 2 * (112 + 320)): per channel mean and standard deviation of the
    stride-16 and stride-32 maps. This is what training caches per image."""
    parts = []
    for stride in STRIDES:
        x = pyramid[stride].float().flatten(2)
        parts += [x.mean(2), x.std(2, unbiased=False)]
    return torch.cat(parts, 1)


class CriticHead(nn.Module):
    """Pooled features (N, F) -> score distribution (N, 10) over 1..10 (softmax), NIMA's head; with
    ``hidden`` > 0 a ReLU layer comes before the FC (tried as PIEA's guide, not shipped: a score with a
    peak at the clean photo needs curvature that one linear layer under a softmax barely has;
    docs/lab-record.md, session 14).

    A fixed standardisation of the features (``feature_mean``/``feature_std``, measured on the training
    set and shipped with the weights) lets one learning rate suit all of them."""

    def __init__(self, features=2 * sum(CHANNELS.values()), dropout=0.5, hidden=0):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Linear(features, hidden) if hidden else None
        self.fc = nn.Linear(hidden or features, 10)

    @property
    def features(self):
        return self.feature_mean.numel()

    def forward(self, pooled):
        x = self.dropout((pooled - self.feature_mean) / self.feature_std)
        if self.hidden is not None:
            x = F.relu(self.hidden(x))
        return F.softmax(self.fc(x), dim=-1)


def head_from_tensors(tensors):
    """A CriticHead shaped like a weights file's tensors (NIMA's single FC, or one with a hidden layer),
    loaded strictly."""
    hidden = tensors.get("hidden.weight")
    head = CriticHead(features=tensors["feature_mean"].numel(), hidden=0 if hidden is None else hidden.shape[0])
    head.load_state_dict(tensors, strict=True)
    return head


def mean_score(distribution):
    """(N, 10) -> (N,): the score, sum_i i * p_i (NIMA's and PIEA's S)."""
    return distribution @ SCORES.to(distribution)


def emd_loss(predicted, target, r=2):
    """NIMA's EMD loss: (mean_k |CDF_p(k) - CDF_t(k)|^r)^(1/r), averaged over the batch.

    >>> p = torch.tensor([[1.0] + [0.0] * 9]); t = torch.tensor([[0.0] * 9 + [1.0]])
    >>> round(float(emd_loss(p, t)), 4)     # nine of ten CDF bins differ by 1: sqrt(9 / 10)
    0.9487
    """
    cdf_gap = torch.cumsum(predicted, -1) - torch.cumsum(target, -1)
    return (cdf_gap.abs().pow(r).mean(-1)).pow(1.0 / r).mean()
