"""PIEA (model ``progressive``): its evaluation, ``semantic-enhance eval progressive``. PIEA has no
training of its own: its only learned part is the critic (``training/critic``)."""
