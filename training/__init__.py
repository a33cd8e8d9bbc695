"""Training side of Semantic Enhance: dataset builders and adapters (``training.data``), training loops,
evaluation and benchmark reports. Nothing here is imported by the daemon at run time."""
