"""Model ``filters``: apply an explicit filter stack (the PIEA/EXPOSURE filter bank) at full resolution.

No weights: the stack is the parameters. Users replay a stack that ``progressive`` found on one
photo onto others; the GIMP plug-in renders progressive steps with it.
"""

from google.protobuf import json_format

from ..imaging import filters as bank
from ..imaging import pixels
from . import register
from .base import Model, Outcome, OutputImage


def stack_from_message(message):
    return bank.parse_stack(json_format.MessageToDict(message, preserving_proto_field_name=True))


@register
class FiltersModel(Model):
    id = "filters"
    version = "1"
    paper = "Hu et al. 2018 (EXPOSURE) filter bank, as used by Du et al. 2019 (PIEA)"
    summary = "Apply an explicit, interpretable filter stack (exposure, gamma, white balance, saturation, " \
              "tone, contrast, B&W, colour curves) at full resolution"
    tasks = ("filters",)

    def check(self, task):
        super().check(task)
        task.stack = stack_from_message(task.setup.stack)
        if not task.stack:
            raise ValueError("the filter stack is empty: give at least one filter")

    def run(self, task, device):
        layer = task.layer
        task.progress(0.05, "applying")
        rgb = bank.apply_stack_tiled(layer.rgb, task.stack, mask=task.mask,
                                     on_progress=lambda f: task.progress(0.05 + 0.9 * f, "applying"))
        return self._outcome(task, [OutputImage("result", pixels.encode(rgb, layer), layer.transfer)])

    pointwise = True  # every filter maps a pixel's colour alone: without a selection, layers stream through

    def run_rows(self, task, bands, emit, device):
        done, height = 0, task.setup.image.height
        task.progress(0.05, "applying")
        for band in bands:
            emit(pixels.encode(bank.apply_stack_tiled(band.rgb, task.stack), band))
            done += band.height
            task.progress(0.05 + 0.9 * done / height, "applying")
        return self._outcome(task, [])

    def _outcome(self, task, images):
        stack_json = bank.stack_to_json(task.stack)
        return Outcome(images=images, filter_stack=stack_json, parameters={"model": self.id, "filter_stack": stack_json})
