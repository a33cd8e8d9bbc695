"""The product entry of ``progressive`` (PIEA): search on the <= 512 px view, replay at full resolution.

The search (search.py) runs M gradient steps on the daemon's low-resolution view, each one backbone
pass forward and back through the critic; progress is reported and cancellation checked every step.
The final stack is then applied to the full-resolution layer in its own bit depth, band by band
(the filters are pointwise), blended by strength and selection. On request the image after each filter
of the final stack comes back too ("step/1 exposure" ... "step/8 color"), the last being the result.
"""

import math

import torch

from .. import register
from ..base import Model, Option, Outcome, OutputImage, RequestError
from ..critic.model import WEIGHTS, load_head, refuse_too_small
from ...imaging import filters, pixels
from . import search

OPTIONS = {
    "learning-rate": (search.LEARNING_RATE, 1e-6, 1.0),
    "exposure-start": (search.EXPOSURE_START, -3.5, 3.5),
    "prior": (search.PRIOR, 0.0, 1e5),
}


def _number(options, name):
    default, low, high = OPTIONS[name]
    text = options.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError("%s is a number, got %r" % (name, text)) from None
    if not (low <= value <= high) or math.isnan(value):
        raise ValueError("%s must be between %g and %g, got %g" % (name, low, high, value))
    return value


@register
class Progressive(Model):
    id = "progressive"
    version = "2"   # 2: the proximal term and lr 1e-4 (session 11)
    paper = "Du et al. 2019, Progressive Image Enhancement under Aesthetic Guidance (PIEA)"
    summary = "An interpretable filter stack (exposure ... colour curves) found by gradient steps on the " \
              "aesthetic critic's score; the stack after every step is returned"
    tasks = ("progressive",)
    weights = (WEIGHTS,)   # PIEA's only learned part is the critic (model 'critic')
    options = (Option("learning-rate", "gradient step size on the raw filter parameters (PIEA: 1e-3)",
                      str(search.LEARNING_RATE)),
               Option("exposure-start", "exposure (EV) the search starts from (PIEA: 1.0, for dark raw photos)", str(search.EXPOSURE_START)),
               Option("prior", "weight of the mean squared pixel change in the loss, so a good photo barely "
                               "moves (not in PIEA: 0)", str(search.PRIOR)),
               Option("strength", "0..1: blend of the result with the original", "1"))

    def __init__(self):
        super().__init__()
        self.critic = None

    def load(self, device):
        self.critic = search.Critic(load_head(device=device), device)

    def check(self, request):
        super().check(request)
        if request.steps and not 1 <= request.steps <= search.MAX_STEPS:
            raise ValueError("steps must be between 1 and %d (PIEA takes %d), got %d"
                             % (search.MAX_STEPS, search.STEPS, request.steps))
        for name in OPTIONS:
            _number(request.options, name)
        refuse_too_small(request.width, request.height)

    def predict(self, view, request):
        refuse_too_small(view.layer.width, view.layer.height, RequestError)
        steps = request.steps or search.STEPS
        report = request.stage(0.05, 0.4, "searching")

        def on_step(k, stack, score):
            report(k / steps)

        rgb = view.rgb.float()
        with torch.enable_grad():
            stacks, scores = search.search(rgb, self.critic, steps=steps,
                                           lr=_number(request.options, "learning-rate"),
                                           exposure_start=_number(request.options, "exposure-start"),
                                           prior=_number(request.options, "prior"), on_step=on_step)
        return stacks, scores

    def apply(self, layer, params, request):
        stacks, scores = params
        final = stacks[-1]
        mix = self.mix(request, layer)
        images = []
        if request.return_steps:   # the image after each filter: the running image, blended, encoded
            original, running = layer.rgb, layer.rgb.clone()
            report = request.stage(0.4, 0.9, "applying")
            for index, (bank, values) in enumerate(final):
                filters.apply_stack_tiled(running, [(bank, values)])
                shown = mix.blend(original, running)
                images.append(OutputImage("step/%d %s" % (index + 1, bank.name), pixels.encode(shown, layer),
                                          layer.transfer))
                report((index + 1) / len(final))
            result = shown
        else:
            result = final.apply(layer.rgb, mix, on_progress=request.stage(0.4, 0.9, "applying"))
        stack_json = final.to_json()
        return Outcome(result=result, images=images, filter_stack=stack_json,
                       steps=[stack.to_json() for stack in stacks],
                       scores=[{"name": "critic", "value": round(scores[-1], 4), "distribution": []}],
                       parameters={"model": self.id, "version": self.version, "filter_stack": stack_json,
                                   "steps": len(stacks), "learning_rate": _number(request.options, "learning-rate"),
                                   "exposure_start": _number(request.options, "exposure-start"),
                                   "prior": _number(request.options, "prior"),
                                   "critic_scores": [round(s, 4) for s in scores]})
