"""Shuffle at inference on a real network's own task: its accuracy with its GAP vector in channel order, with one
fixed permutation of the channels, and with each image's channels in their own random order."""
from __future__ import annotations

import torch

from engine.core.errors import CheckpointError
from engine.core.results import Row
from engine.data.textlines import text_lines
from engine.models.importers import RAPIDOCR_CLS
from engine.models.user_classifier import UserClassifier

TESTS = {"in order": None, "one fixed permutation": "fixed", "each image its own permutation": "per_sample"}
OWN_TASKS = {RAPIDOCR_CLS: "text direction (0 / 180 degrees), rendered lines"}
BATCH = 200


def own_task_shuffle(model: UserClassifier, spec: str, samples: int = 1000, seed: int = 0) -> list[Row]:
    """Accuracy of network ``spec`` on ``samples`` fresh examples of its own task (``seed``), per way of testing."""
    if spec not in OWN_TASKS or model.gap is None:
        raise CheckpointError(f"shuffle at inference on a network's own task needs that task's data; known for: "
                              f"{', '.join(OWN_TASKS)}")
    images, labels = text_lines(samples, seed)
    inputs = torch.cat([model.spec.to_input(image.unsqueeze(0)) for image in images])
    permute = model.gap.permute
    rows = []
    for tested, mode in TESTS.items():
        permute.permutation, permute.generator = None, None
        if mode == "fixed":
            permute.permutation = torch.randperm(_width(model, inputs[:1]), generator=torch.Generator().manual_seed(seed))
        elif mode == "per_sample":
            permute.generator = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            predicted = torch.cat([model.net(chunk).argmax(1) for chunk in inputs.split(BATCH)])
        permute.permutation, permute.generator = None, None
        rows.append({"network": spec, "task": OWN_TASKS[spec], "tested": tested,
                     "accuracy": 100 * (predicted == labels).float().mean().item(), "n": samples,
                     "chance": 100 / model.num_classes})
    return rows


def _width(model: UserClassifier, x: torch.Tensor) -> int:
    """Channels of the GAP vector."""
    with torch.inference_mode():
        return int(model.gap.extractor(x)[-1].shape[1])
