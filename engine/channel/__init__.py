"""The channel code: where position lives in the GAP vector (paper Sec. 3 and its supplementary question).

- Channel code map: the same images placed in every cell; the mean GAP vector per cell is a
  cells x channels matrix. Each channel's preferred cell, selectivity and the share of its
  variance explained by the cell show which channels carry position; ordering the channels by
  preferred cell makes the code visible.
- Decode probe: a linear classifier on frozen GAP vectors predicting the cell, read from the
  vector as it is, after a per-sample random permutation of its channels, or from its sorted
  values (the most that any permutation-invariant read-out of the values could use).
- Shuffle at inference: the paper's 2 x 2 of trained with / without shuffle x tested with / without.

Networks: this app's probes, or a user's torchvision classifier (``engine.models.user_classifier``).
Features are cached in memory and on disk (uploads: memory only), keyed by a fingerprint of the
weights and the data.
"""
