"""Model ``enhancegan`` (Deng, Loy & Tang 2018): aesthetic enhancement (piecewise colour curves, deep
filtering) and ranked aesthetic crops, on the shared backbone (network.py), trained with the critic as
discriminator (training/enhancegan/)."""

from .model import EnhanceGAN  # noqa: F401  (registers the model)
