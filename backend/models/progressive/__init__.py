"""Model ``progressive``: PIEA (Du et al. 2019), an interpretable filter stack found by gradient descent on
the aesthetic critic's score.

    search.py   the optimisation on the small copy (Algorithm 1), the critic as a differentiable function
    model.py    the product entry: search on the <= 512 px view, replay the stack on the full layer

No weights of its own: the critic (model ``critic``) is PIEA's only learned part. Its evaluation is
``training/progressive``; its card ``backend/weights/progressive.md``.
"""

from . import search  # noqa: F401
from .model import Progressive  # noqa: F401
