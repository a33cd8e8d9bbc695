"""What every model shares: its declaration, lazy loading, and the pipeline around HDRNet's seam.

A model writes two things:
- ``predict(view, request) -> params``: on the low-resolution ``View`` (<= 512 px, with the shared,
  cached backbone features), the parameters of the edit: a value of ``backend/imaging`` (colour-transform
  maps, a filter stack, tone curves, crop boxes);
- ``apply(layer, params, request) -> Outcome``: those parameters on the full-resolution pixels.

``run`` is the pipeline, written once here: decode, downscale, features, predict, apply, encode, with
progress and a cancellation check between the stages (and inside long stages, through ``request.stage``).
A pointwise model (each output pixel depends only on the same input pixel) is also streamed band by band
by ``run_rows``, so upload, work and download overlap.
"""

import dataclasses
from dataclasses import dataclass, field
import threading

import numpy as np

from .. import styles as style_registry
from ..imaging import mixing, pixels, upsample
from .request import ADJUSTMENT_MAP, CropOptions, Request, RequestError, SELECTION  # noqa: F401  (the models' API)


class ModelNotInstalled(Exception):
    pass


@dataclass
class OutputImage:
    role: str
    pixels: np.ndarray             # already in the format to send
    transfer: str = "perceptual"


@dataclass
class Outcome:
    result: object = None          # planar sRGB float (3, H, W): the pipeline encodes it as the "result" image
    images: list = field(default_factory=list)   # further OutputImages (adjustment maps, steps)
    filter_stack: dict = None      # {"filters": [...]} as imaging.filters.FilterStack.to_json
    steps: list = field(default_factory=list)
    crops: list = field(default_factory=list)    # dicts x, y, width, height, score (normalised)
    scores: list = field(default_factory=list)   # dicts name, value, distribution
    parameters: dict = field(default_factory=dict)
    map_names: list = field(default_factory=list)


@dataclass
class Option:
    name: str
    description: str
    default: str = ""
    choices: tuple = ()


class View:
    """The low-resolution copy a model predicts on. ``rgb`` (1, 3, h, w) on the device, the long side at
    most ``upsample.NETWORK_SIDE``; ``features`` the shared backbone pyramid, computed on first use and
    cached by content, so several heads on one layer cost one backbone pass. Either may be given (a
    benchmark that times the stages itself)."""

    def __init__(self, layer, device="cpu", rgb=None, features=None):
        self.layer, self.device = layer, device
        self._rgb, self._features = rgb, features

    @property
    def rgb(self):
        if self._rgb is None:
            self._rgb = upsample.downscale(self.layer.rgb).to(self.device)
        return self._rgb

    @property
    def features(self):
        if self._features is None:
            from .backbones.cache import backbone_features

            self._features = backbone_features(self.rgb)
        return self._features


class Model:
    id = ""
    version = "0"
    paper = ""
    summary = ""
    tasks = ()
    options = ()
    weights = ()          # files in backend/weights that must be present and verified
    default_rank = 0      # lower wins when several models serve one task
    strength = True       # the request's strength (and selection) blend the result with the original
    pointwise = False     # see run_rows

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded_on = None

    @property
    def styles(self):
        """The style (or method) names this model serves."""
        return ()

    def style_info(self):
        """The registry entries of this model's styles (those the registry knows)."""
        return [style_registry.STYLES[name] for name in self.styles if name in style_registry.STYLES]

    def installed(self):
        from .. import weights

        return all(weights.entry(name) is not None for name in self.weights)

    def not_installed(self):
        """The sentence ModelNotInstalled says when ``installed()`` is false."""
        return ("model '%s' is not installed in this daemon: its weights (%s) are not in backend/weights yet"
                % (self.id, ", ".join(self.weights) or "none"))

    def ensure_loaded(self, device):
        if not self.installed():
            raise ModelNotInstalled(self.not_installed())
        with self._lock:
            if self._loaded_on != device:
                self.load(device)
                self._loaded_on = device

    def load(self, device):
        """Read weights onto the device (called once, lazily)."""

    # -- checks, before any pixel arrives ------------------------------------------------------------
    def check(self, request):
        """Refuse a request this model cannot do, from its setup alone (raise ValueError with a sentence)."""
        if self.styles and request.kind == "adjust" and request.style not in self.styles:
            raise ValueError("model '%s' has no style %r; its styles are: %s"
                             % (self.id, request.style, ", ".join(self.styles)))
        known = {option.name for option in self.options}
        unknown = sorted(set(request.options) - known)
        if unknown:
            raise ValueError("model '%s' has no option %s; its options are: %s"
                             % (self.id, ", ".join(unknown), ", ".join(sorted(known)) or "none"))
        if not self.strength and (request.strength != 1.0 or request.mask_channels):
            raise ValueError("model '%s' takes no strength or selection" % self.id)

    # -- the seam ------------------------------------------------------------------------------------
    def predict(self, view, request):
        """Parameters of the edit, from the low-resolution view (``view`` is None for a pointwise model
        whose parameters are all in the request)."""
        raise NotImplementedError

    def apply(self, layer, params, request):
        """The parameters on the full-resolution layer (imaging.pixels.Layer) -> Outcome."""
        raise NotImplementedError

    # -- the pipeline, once --------------------------------------------------------------------------
    @staticmethod
    def mix(request, layer):
        """Strength and the selection (its first channel) as a mixing.Mix; a user's adjustment map is the
        model's to read."""
        selection = None
        if request.mask is not None and request.mask_role == SELECTION:
            selection = pixels.decode_mask(request.mask)[:1]
            if tuple(selection.shape[1:]) != (layer.height, layer.width):
                raise RequestError("the selection is %dx%d but the layer is %dx%d"
                                 % (selection.shape[2], selection.shape[1], layer.width, layer.height))
        return mixing.Mix(strength=request.strength, selection=selection)

    def run(self, request, device="cpu"):
        """Decode, predict on the low-resolution view, apply at full resolution, encode."""
        request.progress(0.02, "decoding")
        layer = pixels.decode(request.image, request.transfer)
        view = View(layer, device)
        request.progress(0.05, "predicting")
        params = self.predict(view if not self.pointwise else None, request)
        request.progress(0.4, "applying")
        outcome = self.apply(layer, params, request)
        request.progress(0.92, "encoding")
        return self._encoded(outcome, layer)

    @staticmethod
    def _encoded(outcome, layer):
        if outcome.result is not None:
            outcome.images.insert(0, OutputImage("result", pixels.encode(outcome.result, layer), layer.transfer))
            outcome.result = None
        return outcome

    def run_rows(self, request, bands, emit, device="cpu"):
        """A pointwise model on a streamed layer: ``bands`` yields decoded row bands (imaging.pixels.Layer)
        as they arrive; each band's encoded result rows go to ``emit`` in order. Returns the Outcome
        without images."""
        params = self.predict(None, request)
        done, outcome = 0, Outcome()
        # the bands report no progress of their own (it would restart at every band): the whole layer's
        # progress is reported here, and cancellation is still checked inside the work (jobs.checkpoint)
        band_request = dataclasses.replace(request, job=None)
        request.progress(0.05, "applying")
        for band in bands:
            outcome = self.apply(band, params, band_request)
            emit(pixels.encode(outcome.result, band))
            done += band.height
            request.progress(0.05 + 0.9 * done / max(1, request.height), "applying")
        outcome.result = None
        return outcome
