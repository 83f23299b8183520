"""Shuffle at inference: the paper's 2 x 2 of trained with / without a channel shuffle x tested with / without."""
from __future__ import annotations

import copy

import torch
from torch import nn

from engine.channel.decode import PROBE_SEED
from engine.core.device import seed_everything
from engine.data.patches import PatchSource
from engine.models.probe import HEAD_LABELS, ProbeNet
from engine.probe.evaluate import evaluate_probe

SHUFFLES = ("none", "per_call", "fixed")


class Shuffled(nn.Module):
    """A probe network evaluated with its latent channels shuffled before its head, as ``mode`` says.

    ``none``: in order; ``per_call``: a fresh permutation on every forward call (one per batch, as
    PermuteNet trains); ``fixed``: one given permutation. Shuffling the channels of the latent map
    commutes with global pooling, so for GAP -> Linear heads this is the GAP vector shuffled; for
    GAPNet it is the latent shuffled before its conv head. The network's own shuffle is bypassed.
    """

    def __init__(self, net: ProbeNet, mode: str, permutation: torch.Tensor | None = None) -> None:
        super().__init__()
        if mode not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}, got {mode!r}")
        self.net, self.mode, self.config = net, mode, net.config
        self.permutation = net.fixed_perm if permutation is None else permutation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net.backbone(x)
        if self.mode == "per_call":
            z = z[:, torch.randperm(z.shape[1], device=z.device)]
        elif self.mode == "fixed":
            z = z[:, self.permutation.to(z.device)]
        if self.config.head == "gapnet":
            return self.net.head(z).mean((2, 3))
        return self.net.head(z.mean((2, 3)))


def relabeled(net: ProbeNet, permutation: torch.Tensor) -> ProbeNet:
    """The network trained with one *fixed* shuffle, made exactly from an in-order one.

    A fixed permutation P before the head only relabels the head's inputs: head'(z[P]) = head(z) with
    the head's input channels taken in order P. Since the initialisation is i.i.d. and Adam works per
    coordinate, training with P from an init equals training in order from the relabeled init.
    """
    out = copy.deepcopy(net)
    out.head.weight.data = net.head.weight.data[:, permutation].clone()
    out.fixed_perm.copy_(permutation)
    return out


def head_mean_share(net: ProbeNet) -> float:
    """Share of the head's weight energy in each output's mean over input channels (1 = reads only the sum).

    A head trained under a fresh shuffle per call can only use what every channel order shares, so its
    rows become constant: it reads the GAP vector's sum alone.
    """
    weight = net.head.weight.detach().float()
    weight = weight.sum((2, 3)) if weight.dim() == 4 else weight  # GAPNet's conv head, pooled over its taps
    return float(weight.mean(1, keepdim=True).pow(2).sum() * weight.shape[1] / weight.pow(2).sum())


def shuffle_2x2(in_order: ProbeNet, per_call: ProbeNet, kind: str, source: PatchSource | None = None,
                samples: int = 1000, seed: int = PROBE_SEED, device: torch.device | None = None) -> list[dict]:
    """Accuracy of a net trained without / with a ``kind`` shuffle, each tested without / with it.

    ``per_call``: the shuffled net is the PermuteNet ``per_call`` (trained with a fresh permutation per
    call) and testing shuffles per call. ``fixed``: the shuffled net is ``in_order`` relabeled by its
    stored permutation (see :func:`relabeled`) and testing applies that same permutation. Each cell's
    per-call permutations are drawn from torch's generator seeded with ``seed``.
    """
    if in_order.config.task != per_call.config.task:
        raise ValueError("both networks of a 2 x 2 must be trained for the same task")
    if kind not in ("per_call", "fixed"):
        raise ValueError(f"kind must be 'per_call' or 'fixed', got {kind!r}")
    permutation = in_order.fixed_perm
    shuffled = per_call if kind == "per_call" else relabeled(in_order, permutation)
    names = {"no shuffle": HEAD_LABELS[in_order.config.head],
             "shuffle": HEAD_LABELS[per_call.config.head] if kind == "per_call" else f"{HEAD_LABELS[in_order.config.head]}, relabeled"}
    rows = []
    for trained, net in (("no shuffle", in_order), ("shuffle", shuffled)):
        for tested, mode in (("no shuffle", "none"), ("shuffle", kind)):
            seed_everything(seed)
            accuracy = evaluate_probe(Shuffled(net, mode, permutation), source, samples, device=device).accuracy
            rows.append({"task": net.config.task, "kind": kind, "grid": net.config.grid, "trained": trained,
                         "tested": tested, "accuracy": accuracy, "chance": 100 / net.config.num_outputs,
                         "samples": samples, "net": names[trained],
                         "head_mean_share": head_mean_share(net)})
    return rows
