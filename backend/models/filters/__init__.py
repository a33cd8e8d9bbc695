"""Model ``filters``: apply an explicit filter stack (the PIEA/EXPOSURE filter bank) at full resolution.

No weights and no prediction: the stack in the request is the parameters. Users replay a stack that
``progressive`` found on one photo onto others; the GIMP plug-in renders progressive steps with it.
Every filter maps a pixel's colour alone, so a layer without a selection streams through band by band.
"""

from .. import register
from ..base import Model, Outcome


@register
class FiltersModel(Model):
    id = "filters"
    version = "1"
    paper = "Hu et al. 2018 (EXPOSURE) filter bank, as used by Du et al. 2019 (PIEA)"
    summary = "Apply an explicit, interpretable filter stack (exposure, gamma, white balance, saturation, " \
              "tone, contrast, B&W, colour curves) at full resolution"
    tasks = ("filters",)
    pointwise = True

    def check(self, request):
        super().check(request)
        if not request.filter_stack:
            raise ValueError("the filter stack is empty: give at least one filter")

    def predict(self, view, request):
        return request.filter_stack

    def apply(self, layer, stack, request):
        rgb = stack.apply(layer.rgb, self.mix(request, layer), on_progress=request.stage(0.4, 0.9, "applying"))
        stack_json = stack.to_json()
        return Outcome(result=rgb, filter_stack=stack_json, parameters={"model": self.id, "filter_stack": stack_json})
