"""PosLab's engine: data, models, training, probes, rankings, ablation and metrics. No UI code.

Importing the package first makes ``import torchvision`` work on a CPU-only torch (see ``tvfix``).
"""
from engine.core import tvfix as _tvfix  # noqa: F401  (must run before any torchvision import)
