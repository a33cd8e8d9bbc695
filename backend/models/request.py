"""One request, as a typed value: what the transport decodes from the wire and every model reads.

Models never see protobuf: the transport (``backend/transport/requests.py``) checks and turns a setup
message into a ``Request`` before any pixel arrives, and the pipeline in ``base.Model.run`` adds the
decoded pixels. Tests and in-process callers build a ``Request`` directly.
"""

from dataclasses import dataclass, field

import numpy as np

SELECTION, ADJUSTMENT_MAP = "selection", "adjustment-map"   # what a mask means


class RequestError(ValueError):
    """A request that only its pixels show to be wrong (a sentence for the client, INVALID_ARGUMENT)."""


@dataclass
class CropOptions:
    count: int = 5          # ranked boxes wanted
    aspect: float = 0.0     # width / height in pixels; 0 = free


@dataclass
class Request:
    """``image`` (H, W, C) u8/u16/f32 as it arrived (None while a pointwise upload is still streaming);
    ``mask`` (H, W, K) or None, a selection or, with ``mask_role`` adjustment-map, the user's map."""

    kind: str                                 # adjust | enhance | crop | progressive | filters | score
    style: str = ""                           # adjust: style; enhance: method
    strength: float = 1.0                     # 0..1: how much of the result replaces the original
    mask_role: str = SELECTION
    selected_preset: object = None            # name or number; None: the style's default
    unselected_preset: object = None
    return_maps: bool = False                 # adjust: also the K adjustment maps
    return_steps: bool = False                # progressive: also the image after each step
    steps: int = 0                            # progressive: 0 = the model's default
    filter_stack: object = None               # filters: imaging.filters.FilterStack
    crop: CropOptions = field(default_factory=CropOptions)
    options: dict = field(default_factory=dict)   # model-specific options left after the typed ones
    image: np.ndarray = None
    transfer: str = "perceptual"
    mask: np.ndarray = None
    mask_channels: int = 0                    # known from the header before the mask's bytes arrive
    width: int = 0                            # the layer's size, known from the header
    height: int = 0
    job: object = None

    def __post_init__(self):
        if self.mask is not None and not self.mask_channels:
            self.mask_channels = 1 if np.ndim(self.mask) == 2 else int(np.shape(self.mask)[2])
        if self.image is not None and not self.height:
            self.height, self.width = np.shape(self.image)[:2]

    @property
    def personal(self):
        """The mask replaces the predicted adjustment map (personalisation)."""
        return self.mask_role == ADJUSTMENT_MAP and self.mask_channels > 0

    def progress(self, fraction, stage):
        """Report progress 0..1; raises jobs.Cancelled when the client has gone (the work stops there)."""
        if self.job is not None:
            self.job.progress(fraction, stage)

    def stage(self, start, end, stage):
        """A progress callback for a fraction 0..1 of one stage that spans [start, end] of the whole."""
        return lambda fraction: self.progress(start + (end - start) * fraction, stage)
