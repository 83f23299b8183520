"""Networks: the paper's ResNet-18 layout and the GAPNet / PermuteNet / classifier probes."""
