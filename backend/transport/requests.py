"""Setup messages -> typed ``models.Request`` values, once, before any pixel arrives.

Everything a client can get wrong in a setup is refused here or by the model's ``check`` with a sentence
(INVALID_ARGUMENT), so models never read protobuf and a bad request costs no upload.
"""

from google.protobuf import json_format

from ..imaging import filters, pixels
from ..models.request import ADJUSTMENT_MAP, SELECTION, CropOptions, Request
from . import schema

TRANSFERS = {schema.TRANSFER_UNSPECIFIED: pixels.PERCEPTUAL, schema.PERCEPTUAL: pixels.PERCEPTUAL,
             schema.LINEAR: pixels.LINEAR}
MASK_ROLES = {schema.MASK_ROLE_UNSPECIFIED: SELECTION, schema.BLEND: SELECTION, schema.ADJUSTMENT_MAP: ADJUSTMENT_MAP}


def _strength(options):
    text = options.pop("strength", "1")
    try:
        value = float(text)
    except ValueError:
        raise ValueError("strength is a number from 0 to 1, got %r" % text) from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError("strength is a number from 0 to 1, got %g" % value)
    return value


def _presets(setup):
    """(selected, unselected) as names or numbers; None where the client left the style's default."""
    by_number = setup.selected_preset != 0 or setup.unselected_preset != 0
    selected = setup.selected_preset_name or (setup.selected_preset if by_number else None)
    unselected = setup.unselected_preset_name or (setup.unselected_preset if by_number else None)
    return selected, unselected


def decode(kind, setup):
    """A setup message of RPC task ``kind`` -> Request (without pixels). Raises ValueError with a sentence."""
    fields = setup.DESCRIPTOR.fields_by_name
    options = dict(setup.options) if "options" in fields else {}
    has_mask = "mask" in fields and setup.HasField("mask") and setup.mask.channels
    request = Request(kind=kind, style=getattr(setup, "style", "") or getattr(setup, "method", ""),
                      options=options, transfer=TRANSFERS.get(setup.image.transfer, pixels.PERCEPTUAL),
                      mask_channels=setup.mask.channels if has_mask else 0)
    request.width, request.height = setup.image.width, setup.image.height
    if "strength" in options:
        request.strength = _strength(options)
    if kind == "adjust":
        request.mask_role = MASK_ROLES.get(setup.mask_role, SELECTION)
        request.selected_preset, request.unselected_preset = _presets(setup)
        request.return_maps = setup.return_maps
    elif kind == "filters":
        request.filter_stack = filters.FilterStack.parse(
            json_format.MessageToDict(setup.stack, preserving_proto_field_name=True))
    elif kind == "progressive":
        request.steps, request.return_steps = setup.steps, setup.return_step_images
    elif kind == "crop":
        request.crop = CropOptions(count=setup.count or 5, aspect=setup.aspect_ratio)
    return request
