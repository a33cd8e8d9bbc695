"""Training data: the photo corpus, semantic cues, style programs, style pairs and dataset adapters.

    corpus.py    real photographs shipped in packages -> data/corpus + manifest + split
    cues.py      faces, skin, sky, vegetation, salient foreground: soft masks, cached by content hash
    styles.py    the deterministic style programs (foreground-pop-out, local-xpro, watercolor, cold, spring)
    pairs.py     input/target(/cue) pairs on disk, ``load_split`` and a torch Dataset for the trainers
    adapters.py  the public formats: before/after folders, Yan et al. 2016, MIT-Adobe FiveK exports
    cli.py       ``semantic-enhance data corpus|pairs|stats``
"""
