"""sa-adjust training, evaluation (Table 1) and baselines."""
