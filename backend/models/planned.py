"""Models of the four papers whose trained weights this daemon does not have yet.

They are listed so that clients see every model id, and a request gets FAILED_PRECONDITION with a
sentence ("model 'sa-adjust' is not installed ...") instead of an unknown-id error. Each entry is
replaced by its real module as the model lands.
"""

from . import register
from .base import Model


@register
class EnhanceGAN(Model):
    id = "enhancegan"
    paper = "Deng, Loy & Tang 2018, Aesthetic-Driven Image Enhancement by Adversarial Learning"
    summary = "Piecewise colour or deep-filter enhancement, and aesthetic crops"
    tasks = ("enhance", "crop")
    styles = ("piecewise", "deep-filter")  # enhance: methods
    weights = ("enhancegan.safetensors",)
