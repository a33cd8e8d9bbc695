"""What every model shares: its declaration, lazy loading onto the device, and the task/outcome types.

Heads follow HDRNet's seam: ``predict`` works on a low-resolution copy and returns parameters;
``apply`` applies them to the full-resolution pixels. ``run`` ties the two for one task.
"""

from dataclasses import dataclass, field
import threading

import numpy as np


class ModelNotInstalled(Exception):
    pass


@dataclass
class Task:
    """One request, decoded: ``layer`` (imaging.pixels.Layer), ``mask`` float (H, W, K) or None."""

    kind: str                      # adjust | enhance | crop | progressive | filters | score
    layer: object
    mask: object = None
    style: str = ""
    options: dict = field(default_factory=dict)
    setup: object = None           # the raw setup message, for task-specific fields
    job: object = None

    def progress(self, fraction, stage):
        if self.job is not None:
            self.job.progress(fraction, stage)


@dataclass
class OutputImage:
    role: str
    pixels: np.ndarray             # already in the format to send
    transfer: str = "perceptual"


@dataclass
class Outcome:
    images: list = field(default_factory=list)
    filter_stack: dict = None      # {"filters": [...]} as imaging.filters.stack_to_json
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


class Model:
    id = ""
    version = "0"
    paper = ""
    summary = ""
    tasks = ()
    styles = ()
    options = ()
    weights = ()          # files in backend/weights that must be present and verified
    default_rank = 0      # lower wins when several models serve one task

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded_on = None

    def installed(self):
        from .. import weights

        return all(weights.entry(name) is not None for name in self.weights)

    def ensure_loaded(self, device):
        if not self.installed():
            raise ModelNotInstalled("model '%s' is not installed in this daemon: its weights (%s) are not in "
                                    "backend/weights; train them with `semantic-enhance train %s` (see README)"
                                    % (self.id, ", ".join(self.weights) or "none", self.id))
        with self._lock:
            if self._loaded_on != device:
                self.load(device)
                self._loaded_on = device

    def load(self, device):
        """Read weights onto the device (called once, lazily)."""

    def check(self, task):
        """Refuse a task this model cannot do, before any work (raise ValueError with a sentence)."""
        if self.styles and task.kind == "adjust" and task.style not in self.styles:
            raise ValueError("model '%s' has no style %r; its styles are: %s"
                             % (self.id, task.style, ", ".join(self.styles)))
        known = {option.name for option in self.options}
        unknown = sorted(set(task.options) - known)
        if unknown:
            raise ValueError("model '%s' has no option %s; its options are: %s"
                             % (self.id, ", ".join(unknown), ", ".join(sorted(known)) or "none"))

    def run(self, task, device):
        raise NotImplementedError

    # A pointwise model (each output pixel depends only on the same input pixel and the setup) may also
    # implement ``run_rows``: the daemon then streams the layer through it band by band, so upload, work
    # and download overlap instead of following one another.
    pointwise = False

    def run_rows(self, task, bands, emit, device):
        """``bands`` yields decoded row bands (imaging.pixels.Layer) in order as they arrive; ``emit``
        sends each band's encoded result rows (H_b, W, C) back in order. Returns an Outcome without images."""
        raise NotImplementedError
