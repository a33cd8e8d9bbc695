"""The shipped critic's training recipe (chosen on the validation split; see backend/weights/critic.md).
Kept free of heavy imports: the command line reads it to show its defaults."""

DEFAULTS = {"steps": 3000, "lr": 3e-4, "rank_weight": 1.0, "margin": 2.0, "batch_views": 32, "dropout": 0.5,
            "weight_decay": 1e-4,
            "nearby_views": 4, "nearby_copies": 6,   # small filter-bank moves of clean views (for PIEA; critic.md)
            "mine_rounds": 0, "mine_views": 1,       # mining PIEA's own results: tried, not adopted (progressive.md)
            "stationary_weight": 0.0, "stationary_views": 4,  # the clean photo flat for PIEA (stationary.py; critic.md)
            "hidden": 0}   # a ReLU layer before the FC (0: NIMA's head; tried for PIEA, not adopted: lab-record.md)
VIEWS, DEGRADED = 8, 10   # views per training photo (the whole photo + random crops); degraded copies per view
