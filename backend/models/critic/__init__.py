"""Model ``critic``: an aesthetic critic in NIMA's shape, standing in for NIMA (which cannot be had here).

    network.py   CriticHead (pooled backbone features -> dropout -> FC(10) -> softmax over scores 1..10),
                 the EMD loss, and ``critic_view`` (the small copy the critic sees)
    model.py     the product entry: ``score`` on the low-resolution view; no full-resolution apply
    brisque.py   BRISQUE (Mittal et al. 2012), the independent second score: our features, OpenCV's LIVE
                 regressor (backend/weights/brisque_*_live.yml, Apache-2.0)

Training (clean corpus photos against seeded degradations of them) lives in ``training/critic/``;
the weights' card is ``backend/weights/critic.md``.
"""

from .network import CRITIC_SIDE, CriticHead, critic_view, emd_loss, mean_score, pooled_features  # noqa: F401
from .model import WEIGHTS, Critic, MIN_SIDE, score_distribution  # noqa: F401
