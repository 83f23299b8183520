"""Find, in any traceable image classifier, the global average pooling its classifier reads and the stages before it.

The network is traced into a ``torch.fx`` graph (an ONNX model converted by onnx2torch already is one) and run once
on a sample. A node is a *global average pool* when its output equals the mean over height and width of a 4-D
feature map it takes (``nn.AdaptiveAvgPool2d(1)``, ONNX ``GlobalAveragePool``, timm's ``SelectAdaptivePool2d``,
``x.mean((2, 3))`` all qualify, whatever their type). The one the classifier reads is the last such node that every
path from the input to the output goes through (squeeze-and-excitation pools sit on side branches, so they are not).
The stages are found the same way: of the nodes every path to that pool goes through, the last one at each spatial
resolution. The pool's input is the last stage, so the mean of the last stage is the GAP vector.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import fx, nn

from engine.core.errors import CheckpointError

LOOKED_FOR = ("a node whose output is the mean over height and width of a 4-D feature map (nn.AdaptiveAvgPool2d(1), "
              "ONNX GlobalAveragePool, timm's SelectAdaptivePool2d, x.mean((2, 3))) on every path from the input to "
              "the output")
PERMUTE = "gap_permute"


class ChannelPermute(nn.Module):
    """Identity, or the channels (dim 1) of the GAP vector reordered: one ``permutation`` for all, or each sample's own
    drawn from ``generator`` (``per_sample``). It has no weights: the network's state dict is unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.permutation: torch.Tensor | None = None
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is not None:
            order = torch.rand(x.shape[:2], generator=self.generator).argsort(1).to(x.device)
            return x.gather(1, order.view(*order.shape, *[1] * (x.dim() - 2)).expand_as(x))
        if self.permutation is not None:
            return x[:, self.permutation.to(x.device)]
        return x


@dataclass
class GapGraph:
    """A classifier traced with a :class:`ChannelPermute` right after its GAP, and what was found in it."""

    module: fx.GraphModule  # the whole network (logits), the GAP vector passing through ``module.gap_permute``
    extractor: fx.GraphModule  # the same weights, returning the stage outputs only
    gap: str  # the pooling node's name
    stages: list[str]  # node names of the stage outputs, shallowest first (the last is the pool's input)
    num_classes: int

    @property
    def permute(self) -> ChannelPermute:
        return self.module.get_submodule(PERMUTE)


def trace(net: nn.Module) -> fx.GraphModule:
    """``net`` as an fx graph sharing its weights (a GraphModule is copied, so the original is left as it was)."""
    if isinstance(net, fx.GraphModule):
        return fx.GraphModule(net, copy.deepcopy(net.graph))
    try:
        return fx.symbolic_trace(net)
    except Exception as err:  # noqa: BLE001 - tracing fails in many ways on data-dependent control flow
        raise CheckpointError(f"{type(net).__name__} cannot be traced into a graph (torch.fx: {str(err)[:200]}); the "
                              "channel code needs the graph to find its global average pooling.") from err


class _Recorder(fx.Interpreter):
    """Runs the graph, keeping every node's output."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[fx.Node, object] = {}

    def run_node(self, n: fx.Node) -> object:
        out = super().run_node(n)
        self.values[n] = out
        return out


def _pooled_input(node: fx.Node, values: dict[fx.Node, object]) -> fx.Node | None:
    """The 4-D input whose spatial mean ``node`` outputs, if any."""
    out = values.get(node)
    if node.op not in ("call_module", "call_function", "call_method") or not isinstance(out, torch.Tensor):
        return None
    for arg in node.all_input_nodes:
        x = values.get(arg)
        if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[2] * x.shape[3] > 1 and out.numel() == x.shape[0] * x.shape[1]:
            mean = x.float().mean((2, 3))
            if torch.allclose(out.float().reshape(mean.shape), mean, rtol=1e-4, atol=1e-5 * float(mean.abs().max()) + 1e-8):
                return arg
    return None


def _dominators(graph: fx.Graph, target: fx.Node) -> list[fx.Node]:
    """Nodes on every path from the inputs to ``target``, in graph order.

    In topological order a node is on every path exactly when no edge between nodes on some path jumps over it.
    """
    nodes = list(graph.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    reach, stack = set(), [n for n in nodes if n.op == "placeholder"]
    while stack:
        n = stack.pop()
        if n not in reach:
            reach.add(n)
            stack.extend(n.users)
    back, stack = set(), [target]
    while stack:
        n = stack.pop()
        if n not in back:
            back.add(n)
            stack.extend(n.all_input_nodes)
    on_path = reach & back
    cover = [0] * (len(nodes) + 1)
    for v in on_path:
        for u in v.all_input_nodes:
            if u in on_path and pos[v] - pos[u] > 1:
                cover[pos[u] + 1] += 1
                cover[pos[v]] -= 1
    out, running = [], 0
    for i, n in enumerate(nodes):
        running += cover[i]
        if n in on_path and running == 0:
            out.append(n)
    return out


def _stage_nodes(graph: fx.Graph, gap: fx.Node, pooled: fx.Node, values: dict[fx.Node, object]) -> list[fx.Node]:
    """The last node at each spatial resolution among the computed 4-D maps every path to ``gap`` goes through."""
    levels: list[tuple[tuple[int, int], fx.Node]] = []
    for n in _dominators(graph, gap):
        if n is gap:
            break
        x = values.get(n)
        if n.op == "placeholder" or not isinstance(x, torch.Tensor) or x.dim() != 4:
            continue
        size = tuple(x.shape[2:])
        if levels and levels[-1][0] == size:
            levels[-1] = (size, n)
        else:
            levels.append((size, n))
    stages = [n for _, n in levels]
    if not stages or stages[-1] is not pooled:
        stages.append(pooled)
    return stages


def _extractor(module: fx.GraphModule, outputs: list[fx.Node]) -> fx.GraphModule:
    """A GraphModule sharing ``module``'s weights that returns the given nodes' values and computes nothing after."""
    graph, copies = fx.Graph(), {}
    graph.graph_copy(module.graph, copies)
    graph.output(tuple(copies[n] for n in outputs))
    extractor = fx.GraphModule(module, graph)
    extractor.graph.eliminate_dead_code()
    extractor.recompile()
    return extractor


def find_gap(net: nn.Module, sample: torch.Tensor, name: str = "the network") -> GapGraph:
    """Trace ``net``, run it on ``sample`` (a small batch it accepts) and find its GAP and stages.

    Raises :class:`CheckpointError` naming what was looked for when there is no global average pooling.
    """
    module = trace(net).eval()
    recorder = _Recorder(module)
    with torch.inference_mode():
        logits = recorder.run(sample)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise CheckpointError(f"{name} does not output one row of class scores per image (got "
                              f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}).")
    output = next(n for n in module.graph.nodes if n.op == "output")
    values = recorder.values
    found = [(n, pooled) for n in _dominators(module.graph, output) if (pooled := _pooled_input(n, values)) is not None]
    if not found:
        raise CheckpointError(f"{name} has no global average pooling the channel code can read: looked for {LOOKED_FOR}.")
    gap, pooled = found[-1]
    stages = _stage_nodes(module.graph, gap, pooled, values)
    names = [n.name for n in stages]
    module.add_submodule(PERMUTE, ChannelPermute())
    with module.graph.inserting_after(gap):
        permuted = module.graph.call_module(PERMUTE, (gap,))
    gap.replace_all_uses_with(permuted, delete_user_cb=lambda user: user is not permuted)
    module.recompile()
    by_name = {n.name: n for n in module.graph.nodes}
    extractor = _extractor(module, [by_name[s] for s in names])
    return GapGraph(module, extractor, gap.name, names, int(logits.shape[1]))
