"""Image classifiers made elsewhere, as :class:`UserClassifier` s: ONNX graphs, timm architectures with a state dict,
safetensors files, weights already in the local torch / Hugging Face caches, and the PP-OCR text-direction classifier
that ``rapidocr-onnxruntime`` bundles.

Nothing in a file runs: ONNX and safetensors hold no code, pickles load ``weights_only``. Nothing is downloaded: timm
builds with ``pretrained=False`` (and ``HF_HUB_OFFLINE=1``), caches are only read. Model specs (CLI ``--model``, the Channel code page):
``path.onnx``, ``timm:<arch>`` with a weights file, ``rapidocr-cls``, ``cache:torchvision/<arch>``,
``cache:timm/<name>``; any of them with ``:untrained`` appended is the same architecture at a seeded random init.
A file over ``engine.core.storage.MAX_MODEL_BYTES`` is refused before it is read.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from engine.core.checkpoints import load_state_into, unwrap_state_dict
from engine.core.errors import CheckpointError
from engine.core.storage import check_size, load_torch
from engine.models.user_classifier import ARCHS, InputSpec, UserClassifier, classifier_from_state

UNTRAINED = ":untrained"
UNTRAINED_SEED = 0
RAPIDOCR_CLS = "rapidocr-cls"
RAPIDOCR_PACKAGE = "rapidocr-onnxruntime==1.4.4"
RAPIDOCR_INSTALL = f"pip install --no-deps {RAPIDOCR_PACKAGE}"  # its own runtime deps (OpenCV, onnxruntime) are not needed
RAPIDOCR_FILE = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
# PP-OCR's text-direction classifier: text lines resized to height 48, padded to 192 wide, (x / 255 - 0.5) / 0.5,
# BGR (OpenCV) order (rapidocr_onnxruntime/config.yaml ``cls_image_shape``, ch_ppocr_cls/text_cls.py resize_norm_img).
RAPIDOCR_INPUT = InputSpec((48, 192), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), bgr=True,
                           source="PP-OCR's own: height 48, padded to 192, (x - 0.5) / 0.5, BGR")
ONNX_FALLBACK = "ImageNet mean and std (an ONNX graph records no normalisation)"
STATE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def read_state(source: Path | str | bytes, name: str) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch checkpoint (``weights_only``), size-checked and unwrapped."""
    return unwrap_state_dict(load_torch(source, name), name)


def _float(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# ---------------------------------------------------------------- ONNX
def _hoist_constants(model) -> None:
    """Move ``Constant`` nodes' tensors into the initializers (PaddlePaddle exports keep weights in Constant nodes,
    which onnx2torch expects as initializers)."""
    keep = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = node.attribute[0].t
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _drop_identities(model) -> None:
    """Bypass ``Identity`` nodes (newer exporters emit them at opsets onnx2torch has no converter for)."""
    outputs = {o.name for o in model.graph.output}
    rename = {}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = rename.get(node.input[0], node.input[0])
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _onnx_size(model) -> tuple[int, int] | None:
    """The fixed (H, W) of the graph's first input, ``None`` when it is dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    hw = [d.dim_value for d in dims[2:4]] if len(dims) == 4 else []
    return (hw[0], hw[1]) if len(hw) == 2 and all(hw) else None


def onnx_module(source: Path | str | bytes, name: str) -> tuple[nn.Module, tuple[int, int] | None]:
    """An ONNX classifier converted to a torch module (onnx2torch), and its fixed input size if it has one."""
    import onnx
    from onnx2torch import convert

    if isinstance(source, bytes):
        check_size(len(source), name)
    elif not Path(source).is_file():
        raise CheckpointError(f"No model file at {source}.")
    else:
        check_size(Path(source).stat().st_size, name)
    try:
        model = onnx.load_from_string(source) if isinstance(source, bytes) else onnx.load(str(source))
    except Exception as err:  # noqa: BLE001 - protobuf decode errors come in several types
        raise CheckpointError(f"{name} is not an ONNX model ({type(err).__name__}).") from err
    if not model.graph.node:
        raise CheckpointError(f"{name} holds no ONNX graph.")
    _hoist_constants(model)
    _drop_identities(model)
    try:
        net = convert(model)
    except Exception as err:  # noqa: BLE001 - an operator onnx2torch lacks, or a malformed graph
        raise CheckpointError(f"{name} could not be converted to torch (onnx2torch: {str(err)[:200]}).") from err
    return net.eval(), _onnx_size(model)


def classifier_from_onnx(source: Path | str | bytes, name: str, grid: int = 3) -> UserClassifier:
    """An ONNX classifier: its fixed input size if the graph has one, else the canvas at its own size; ImageNet mean
    and std (an ONNX graph does not record its normalisation)."""
    net, size = onnx_module(source, name)
    source_text = f"{'ONNX input ' + 'x'.join(map(str, size)) if size else 'dynamic ONNX input: the canvas size'}; {ONNX_FALLBACK}"
    return UserClassifier(net, Path(name).stem, grid, InputSpec(size=size, source=source_text), name)


# ---------------------------------------------------------------- timm
def _timm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched, even by accident
    import timm

    return timm


def timm_input(cfg: Mapping) -> InputSpec:
    """Input size and normalisation from a timm pretrained config."""
    size = tuple(cfg.get("input_size", (3, 224, 224)))[1:]
    return InputSpec(size=(int(size[0]), int(size[1])), mean=tuple(cfg.get("mean", InputSpec.mean)),
                     std=tuple(cfg.get("std", InputSpec.std)), source="timm pretrained config")


def classifier_from_timm(arch: str, state: Mapping[str, torch.Tensor] | None, name: str, grid: int = 3,
                         cfg: Mapping | None = None) -> UserClassifier:
    """timm architecture ``arch`` built with ``pretrained=False`` and ``state`` loaded strictly (``None``: its random
    init); input size and normalisation from ``cfg`` (default: the architecture's pretrained config)."""
    timm = _timm()
    if arch.split(".")[0] not in timm.list_models():
        raise ValueError(f"unknown timm architecture {arch!r} (see timm.list_models())")
    with torch.device("meta"):
        layout = timm.create_model(arch, pretrained=False)
    head = layout.pretrained_cfg.get("classifier", "")
    weight = (state or {}).get(f"{head}.weight")
    kwargs = {"num_classes": int(weight.shape[0])} if weight is not None and weight.dim() in (2, 4) else {}
    net = timm.create_model(arch, pretrained=False, **kwargs)
    if state is not None:
        load_state_into(net, _float(state), name)
    return UserClassifier(net, arch, grid, timm_input(cfg or net.pretrained_cfg), name)


# ---------------------------------------------------------------- caches
def hf_hub_dir() -> Path:
    """The Hugging Face hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def _hf_snapshot(repo: Path) -> Path | None:
    """The snapshot ``refs/main`` names, else the newest one."""
    ref = repo / "refs" / "main"
    if ref.is_file() and (repo / "snapshots" / ref.read_text().strip()).is_dir():
        return repo / "snapshots" / ref.read_text().strip()
    snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime) if (repo / "snapshots").is_dir() else []
    return snapshots[-1] if snapshots else None


def _hf_weights(name: str) -> tuple[Path, dict]:
    """``name``'s weights file and config.json in the Hugging Face cache (official layout ``models--timm--<name>``)."""
    snapshot = _hf_snapshot(hf_hub_dir() / f"models--timm--{name}")
    if snapshot is None or not (snapshot / "config.json").is_file():
        raise CheckpointError(f"timm/{name} is not in the Hugging Face cache ({hf_hub_dir()}) and this app never "
                              "downloads.")
    weights = next((snapshot / f for f in ("model.safetensors", "pytorch_model.bin") if (snapshot / f).is_file()), None)
    if weights is None:
        raise CheckpointError(f"timm/{name} in the Hugging Face cache has no model.safetensors or pytorch_model.bin.")
    return weights, json.loads((snapshot / "config.json").read_text())


def tv_weights_file(arch: str) -> Path:
    """Where torchvision keeps ``arch``'s ImageNet weights in the local torch hub cache (TORCH_HOME)."""
    from torchvision.models import get_model_weights

    url = get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]


def cached_models() -> list[str]:
    """Model specs for classifier weights already in the local torch and Hugging Face caches."""
    found = [f"cache:torchvision/{arch}" for arch in ARCHS if tv_weights_file(arch).is_file()]
    hub = hf_hub_dir()
    if hub.is_dir():
        for repo in sorted(hub.glob("models--timm--*")):
            snapshot = _hf_snapshot(repo)
            if snapshot and (snapshot / "config.json").is_file() and any(
                    (snapshot / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")):
                found.append(f"cache:timm/{repo.name.removeprefix('models--timm--')}")
    return found


# ---------------------------------------------------------------- the real network
def rapidocr_cls_file() -> Path:
    """The bundled PP-OCR text-direction classifier (found without importing rapidocr, which needs OpenCV)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    path = Path(next(iter(spec.submodule_search_locations))) / RAPIDOCR_FILE if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"{RAPIDOCR_CLS} needs the package that bundles it: `{RAPIDOCR_INSTALL}`.")
    return path


def rapidocr_available() -> bool:
    try:
        rapidocr_cls_file()
    except FileNotFoundError:
        return False
    return True


# ---------------------------------------------------------------- one entry point
def untrained(model: UserClassifier, seed: int = UNTRAINED_SEED) -> UserClassifier:
    """The same architecture at a random init drawn from ``seed`` (the process's random state untouched): convolutions
    Kaiming-normal by fan in (the scale holds through depthwise layers), norms 1 / 0 with fresh running statistics,
    linear layers N(0, 0.01); graph constants kept."""
    out = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in out.net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                module.reset_parameters()
                continue
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
            else:
                continue
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    out.arch = f"{model.arch}, untrained"
    return out


def open_classifier(spec: str, weights: Path | str | bytes | None = None, grid: int = 3,
                    name: str | None = None) -> UserClassifier:
    """The classifier a model spec names (see the module docstring); ``weights``: the state dict of ``timm:<arch>``
    or of a torchvision ``<arch>`` (``.pth`` / ``.safetensors``; bytes need ``name``)."""
    if spec.endswith(UNTRAINED):
        base = spec.removesuffix(UNTRAINED)
        if weights is None and base.startswith("timm:"):
            return untrained(classifier_from_timm(base[5:], None, base, grid))
        if weights is None and base in ARCHS:
            from torchvision import models as tvm

            return untrained(UserClassifier(getattr(tvm, base)(weights=None), base, grid))
        return untrained(open_classifier(base, weights, grid, name))
    name = name or (Path(weights).name if isinstance(weights, (str, Path)) else Path(spec).name)
    if spec == RAPIDOCR_CLS:
        net, _ = onnx_module(rapidocr_cls_file(), RAPIDOCR_FILE)
        return UserClassifier(net, "PP-OCR text direction (rapidocr)", grid, RAPIDOCR_INPUT, RAPIDOCR_CLS)
    if spec.startswith("cache:torchvision/"):
        arch = spec.split("/", 1)[1]
        if arch not in ARCHS:
            raise ValueError(f"unknown torchvision classifier {arch!r}; expected one of {', '.join(ARCHS)}")
        path = tv_weights_file(arch)
        if not path.is_file():
            raise CheckpointError(f"torchvision's {arch} weights are not in the local torch cache ({path}).")
        return classifier_from_state(read_state(path, path.name), path.name, arch, grid)
    if spec.startswith("cache:timm/"):
        path, config = _hf_weights(spec.split("/", 1)[1])
        arch = config.get("architecture") or spec.split("/", 1)[1].split(".")[0]
        return classifier_from_timm(arch, read_state(path, path.name), spec, grid, config.get("pretrained_cfg"))
    if spec.startswith("timm:"):
        if weights is None:
            raise ValueError(f"{spec} needs a weights file (.pth or .safetensors), or {spec}{UNTRAINED}")
        return classifier_from_timm(spec[5:], read_state(weights, name), name, grid)
    if spec.lower().endswith(".onnx"):
        return classifier_from_onnx(spec if weights is None else weights, name if weights is not None else Path(spec).name, grid)
    if spec in ARCHS or spec.lower().endswith(STATE_SUFFIXES):
        path = weights if spec in ARCHS else spec
        if path is None:
            raise ValueError(f"{spec} needs a weights file (.pth or .safetensors), or {spec}{UNTRAINED}")
        return classifier_from_state(read_state(path, name), name, spec if spec in ARCHS else "auto", grid)
    raise ValueError(f"unknown model {spec!r}: expected a .onnx file, timm:<arch> with --weights, {RAPIDOCR_CLS}, "
                     "cache:torchvision/<arch> or cache:timm/<name> (any with :untrained appended)")
