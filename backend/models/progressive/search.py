"""PIEA's search (Du et al. 2019, Algorithm 1): gradient descent on the filter bank's parameters, under
the aesthetic critic.

The eight filters of the bank run in PIEA's order from identity; each step applies them to the small
copy, asks the critic for its score distribution s, computes S = sum_i i s_i and L = (10 - S)^2, and
moves every raw parameter by -lr dL/draw (EXPOSURE's unbounded parameters, mapped into each filter's
range by tanh/sigmoid, so no step can leave a range). The backbone and head are frozen; only the 8 + 1
+ 2 + 1 + 8 + 1 + 1 + 24 = 46 numbers of the stack move. The photo's pixels never enter the gradient at
full resolution: the stack found on the copy is replayed on the layer (filters are pointwise).

One addition to the paper (backend/weights/progressive.md): a proximal term, ``prior`` x the mean squared
change of the copy's pixels, joins the loss. Our critic prefers photos a few tenths of an EV brighter than
they are, so without it the search spends its steps brightening photos that were right; with it a photo
moves only as far as the critic's gain pays for the change. ``prior`` 0 is the paper's search.
"""

import torch

from ...imaging import filters
from ..critic.network import critic_view, mean_score, pooled_features

STEPS = 20                # PIEA's M
MAX_STEPS = 200           # a request may ask for more, up to this (each step is one backbone pass forward and back)
PAPER_LEARNING_RATE = 1e-3   # PIEA's lambda, tuned for NIMA's gradients
PAPER_EXPOSURE_START = 1.0   # PIEA: "we roughly initialize the parameter of exposure filter with 1.0" (FiveK raws are dark)
# Chosen on the validation split for our critic (backend/weights/progressive.md): its gradients are larger
# than the step the paper tuned, our photos are not all dark, and it prefers every photo a little brighter
# than it is (the proximal term below).
LEARNING_RATE = 1e-4
EXPOSURE_START = 0.0
PAPER_PRIOR = 0.0            # PIEA's loss has no proximal term
PRIOR = 3000.0               # weight of the mean squared pixel change (sRGB in [0, 1]) in the loss; tuned with
                             # LEARNING_RATE: lr x prior much above 0.3 makes the steps overshoot


class Critic:
    """The critic as a differentiable function of the image: (1, 3, h, w) sRGB -> (10,) distribution."""

    def __init__(self, head, device="cpu"):
        from ..backbones.cache import BACKBONES, DEFAULT_BACKBONE, DEFAULT_CACHE

        self.head = head
        self.backbone = DEFAULT_CACHE.model(DEFAULT_BACKBONE, device)
        self.preprocess = BACKBONES[DEFAULT_BACKBONE][1]
        for parameter in list(self.backbone.parameters()) + list(self.head.parameters()):
            parameter.requires_grad_(False)

    def __call__(self, rgb):
        pyramid = self.backbone.pyramid(self.preprocess(critic_view(rgb)))
        return self.head(pooled_features(pyramid))[0]


def start_raw(exposure_start=EXPOSURE_START):
    """{filter name: raw parameters}: every filter at identity, exposure at ``exposure_start`` EV."""
    raw = {}
    for name in filters.ORDER:
        bank = filters.FILTERS[name]
        values = bank.neutral_values()
        if name == "exposure":
            values = [exposure_start]
        raw[name] = bank.to_raw(values).clone()
    return raw


def values_of(raw):
    """Raw parameters -> the stack [(Filter, values tensor)] in PIEA's order."""
    stack = []
    for name in filters.ORDER:
        bank = filters.FILTERS[name]
        values = bank.from_raw(raw[name])
        if name == "white_balance":   # EXPOSURE keeps the red gain at 1 and moves green and blue
            values = torch.cat([torch.ones_like(values[:1]), values[1:]])
        stack.append((bank, values))
    return stack


def to_stack(raw):
    """Raw parameters -> imaging.filters.FilterStack with plain float values (clamped into range)."""
    steps = []
    for bank, values in values_of(raw):
        numbers = [min(max(float(v), bank.low), bank.high) for v in values.detach()]
        steps.append((bank, numbers))
    return filters.FilterStack(steps)


def render(rgb, raw):
    """The stack on a small (1, 3, h, w) copy, differentiably (values clipped to [0, 1] for the critic,
    as the stack's output is stored)."""
    return filters.apply_stack(rgb, values_of(raw)).clamp(0.0, 1.0)


def search(rgb, critic, steps=STEPS, lr=LEARNING_RATE, exposure_start=EXPOSURE_START, prior=PRIOR, on_step=None):
    """PIEA on the small copy ``rgb`` (1, 3, h, w). Returns (stacks after each step, scores before each
    step and after the last). The loss is (10 - S)^2 + ``prior`` x mean((rendered - rgb)^2). ``on_step(k,
    stack, score)`` after each step; it is where a cancelled job stops (jobs.checkpoint inside apply_stack,
    or an exception from the callback)."""
    raw = {name: value.clone().requires_grad_(True) for name, value in start_raw(exposure_start).items()}
    stacks, scores = [], []
    for step in range(steps + 1):
        rendered = render(rgb, raw)
        score = mean_score(critic(rendered)[None])[0]
        scores.append(float(score.detach()))
        if step == steps:
            break
        loss = (10.0 - score) ** 2
        if prior:
            loss = loss + prior * ((rendered - rgb) ** 2).mean()
        grads = torch.autograd.grad(loss, list(raw.values()))
        with torch.no_grad():
            for value, grad in zip(raw.values(), grads):
                value -= lr * grad
        stacks.append(to_stack(raw))
        if on_step is not None:
            on_step(step + 1, stacks[-1], scores[-1])
    return stacks, scores


def replay(rgb, stack):
    """A found stack (FilterStack) on a (*, 3, H, W) image, clipped to [0, 1] as ``render`` gives it."""
    return filters.apply_stack(rgb, stack.steps).clamp(0.0, 1.0)
