"""Models of the four papers whose trained weights this daemon does not have yet.

They are listed so that clients see every model id, and a request gets FAILED_PRECONDITION with a
sentence ("model 'sa-adjust' is not installed ...") instead of an unknown-id error. Each entry is
replaced by its real module as the model lands.
"""

from .. import styles as style_registry
from . import register
from .base import Model, ModelNotInstalled


@register
class FCNStylize(Model):
    id = "fcn-stylize"
    paper = "Zhu & Yu 2018, Automatic Image Stylization using Deep FCNs"
    summary = "Per-pixel quadratic Lab transforms for local and global styles"
    tasks = ("adjust",)
    styles = tuple(style_registry.STYLES)
    weights = ("fcn-stylize.safetensors",)
    default_rank = 1


@register
class EnhanceGAN(Model):
    id = "enhancegan"
    paper = "Deng, Loy & Tang 2018, Aesthetic-Driven Image Enhancement by Adversarial Learning"
    summary = "Piecewise colour or deep-filter enhancement, and aesthetic crops"
    tasks = ("enhance", "crop")
    styles = ("piecewise", "deep-filter")  # enhance: methods
    weights = ("enhancegan.safetensors",)


@register
class Progressive(Model):
    id = "progressive"
    paper = "Du et al. 2019, Progressive Image Enhancement under Aesthetic Guidance (PIEA)"
    summary = "An interpretable filter stack found by gradient ascent on an aesthetic critic"
    tasks = ("progressive",)
    weights = ("aesthetic-critic.safetensors",)   # PIEA's only learned part is the critic (model 'critic')

    def installed(self):
        return False   # the critic is trained; PIEA's optimiser on it is not built yet

    def ensure_loaded(self, device):
        raise ModelNotInstalled("model 'progressive' is not installed in this daemon: PIEA's filter-stack "
                                "optimiser is not built yet (its aesthetic critic, model 'critic', is)")
