"""The grid probe (paper Sec. 3, Table 1): training, evaluation, the shipped checkpoints and Table 1."""
