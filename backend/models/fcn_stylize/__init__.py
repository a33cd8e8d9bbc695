"""Model ``fcn-stylize`` (Zhu & Yu 2018): styles as colour transforms of the quadratic Lab basis.

The paper's FCN, trained on the built-in styles (``backend/styles.py``: cold, spring, ...), has no weights in
this daemon yet; until they arrive those names stay reserved and are refused with a sentence. What this
model serves today are the styles users learn from their own before/after pairs
(``semantic-enhance train fcn-stylize --pairs BEFORE AFTER --name NAME``): a ``looks.Look`` each (the paper's
global quadratic Lab transform, a 17^3 LUT and position terms), read from the user's styles folder
(``store.py``) on every request, so a style learnt while the daemon runs is served at once.

The model is "installed" when at least one learnt style exists.
"""

import os
import threading

from ... import styles as style_registry
from ...imaging import looks
from .. import register
from ..base import Model, ModelNotInstalled, Outcome, RequestError
from . import store


@register
class FCNStylize(Model):
    id = "fcn-stylize"
    version = "1"
    paper = "Zhu & Yu 2018, Automatic Image Stylization using Deep FCNs"
    summary = "Styles you teach it from about ten before/after pairs (the paper's FCN styles: not installed yet)"
    tasks = ("adjust",)
    default_rank = 1

    def __init__(self):
        super().__init__()
        self._looks = {}   # name -> (mtime, size, Look): re-read when the file changes
        self._cache_lock = threading.Lock()

    @property
    def styles(self):
        return store.names()

    def style_info(self):
        return [style_registry.Style(name, name, "a style learnt from your before/after pairs", "learnt", True)
                for name in self.styles]

    def installed(self):
        return bool(self.styles)

    def ensure_loaded(self, device):
        if not self.installed():
            raise ModelNotInstalled(
                "model 'fcn-stylize' has no styles yet: the paper's built-in styles have no weights in this daemon, "
                "and no style has been learnt; teach one with `semantic-enhance train fcn-stylize --pairs BEFORE_DIR "
                "AFTER_DIR --name NAME` (styles are kept in %s)" % store.styles_dir())

    def check(self, request):
        if request.kind == "adjust" and request.style in style_registry.STYLES:
            raise ValueError("fcn-stylize's built-in style %r needs the paper's trained weights, which this daemon "
                             "does not have yet; its learnt styles are: %s"
                             % (request.style, ", ".join(self.styles) or "none (learn one with `semantic-enhance train "
                                                                           "fcn-stylize`)"))
        if request.personal:
            raise ValueError("a learnt style has no adjustment map to replace; give the selection as a blend mask")
        super().check(request)

    def look(self, name):
        path = store.paths(name)[0]
        try:
            stat = os.stat(path)
        except OSError:
            raise RequestError("there is no learnt style %r any more (the styles are: %s)"
                             % (name, ", ".join(self.styles) or "none")) from None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._cache_lock:
            cached = self._looks.get(name)
            if cached is None or cached[0] != key:
                cached = (key,) + store.load(name)
                self._looks[name] = cached
        return cached[1], cached[2]

    def predict(self, view, request):
        try:
            return self.look(request.style)
        except store.StyleFileError as error:
            raise RequestError(str(error)) from None

    def apply(self, layer, params, request):
        look, metadata = params
        rgb = looks.render(layer.rgb, look, self.mix(request, layer),
                               on_progress=request.stage(0.4, 0.9, "applying"))
        return Outcome(result=rgb, parameters={"model": self.id, "style": request.style, "learnt": True,
                                               "sha256": metadata.get("sha256", ""), "strength": request.strength})
