"""Training room of ``critic``: degradations (degrade.py), cached features of clean and degraded views
(data.py), the EMD + ranking training loop (train.py), the pairwise/Spearman evaluation (evaluate.py),
and the ``train critic`` / ``eval critic`` sub-commands (cli.py)."""
