"""The sidebar's checkpoint uploader and the session registries every page reads its user models from.

Uploaded bytes are loaded in memory (``weights_only=True``); files above the upload limit can be given by a path
inside the data root instead (see ``ui.paths``). The models live in this session's state: probes in ``user_probes``
(the grid probe and channel code pages list them), image classifiers in ``user_classifiers`` (the channel code page
lists them), segmentation models in ``user_seg_models`` (the segmentation lab lists them). An uploaded probe (a small
file) is also kept in the cache folder by its content hash, named in the URL (``?ckpt=<hash>``), so a reload or the
link brings it back; classifiers and segmentation weights are never written to disk.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import streamlit as st

from engine.core.paths import PathRefused
from engine.core.storage import CheckpointError, cache_dir, save_bytes, save_json
from engine.models.segmentation import ARCHS, CONFIGS, SegModel
from engine.models.user_classifier import ARCHS as CLASSIFIER_ARCHS
from engine.models.user_classifier import UserClassifier
from engine.models.user_models import load_user_checkpoint
from ui.paths import path_boxes_on, path_help, server_path
from ui.probe import user_probes

CONFIG_LABELS = {"torchvision": "torchvision builder (ResNet: stride 8, ASPP 12/24/36)",
                 "paper": "paper (stride 16, ASPP 6/12/18)"}


def user_seg_models() -> dict[str, SegModel]:
    """Segmentation models this session loaded, by display name."""
    return st.session_state.setdefault("user_seg_models", {})


def user_classifiers() -> dict[str, UserClassifier]:
    """Image classifiers (torchvision state dicts) this session loaded, by display name."""
    return st.session_state.setdefault("user_classifiers", {})


KEPT_PARAM = "ckpt"
KEPT_ID = re.compile(r"^[0-9a-f]{32}$")


def _kept_path(digest: str) -> Path:
    return cache_dir() / "uploads" / f"{digest}.pt"


def _keep_probe(data: bytes, name: str) -> None:
    """Keep an uploaded probe by its content hash and name it in the URL: a reload or the link loads it again."""
    digest = hashlib.sha256(data).hexdigest()[:32]
    save_bytes(data, _kept_path(digest))
    save_json({"name": name}, _kept_path(digest).with_suffix(".json"))
    kept = st.query_params.get_all(KEPT_PARAM)
    if digest not in kept:
        st.query_params[KEPT_PARAM] = [*kept, digest]
    st.session_state.setdefault("ckpt_seen", set()).add(("kept", digest))


def _load_kept(seen: set) -> None:
    """The probes this URL names (``?ckpt=``), each loaded once per session; a gone or bad one is said once."""
    for digest in st.query_params.get_all(KEPT_PARAM):
        if ("kept", digest) in seen:
            continue
        seen.add(("kept", digest))
        path = _kept_path(digest) if KEPT_ID.match(digest) else None
        if path is None or not path.is_file():
            st.session_state.setdefault("ckpt_log", {})[f"link checkpoint {digest[:8]}"] = (
                "error", "This link names an uploaded checkpoint that is not on this server (upload it again).")
            continue
        try:
            name = json.loads(path.with_suffix(".json").read_text())["name"]
        except (OSError, ValueError, KeyError):
            name = f"upload {digest[:8]}"
        _load(path.read_bytes(), name, "auto", "torchvision")


def _load(source: bytes | str, name: str, arch: str, config: str) -> str | None:
    """Load a checkpoint into its registry and log how it went; its kind, or ``None`` when it was refused."""
    log = st.session_state.setdefault("ckpt_log", {})
    try:
        loaded = load_user_checkpoint(source, name, arch, config)
    except (CheckpointError, ValueError) as err:
        log[name] = ("error", str(err))
        return None
    if loaded.kind == "segmentation":
        loaded.model.meta["uploaded"] = True  # its latents stay in memory, never in the disk cache
    registry = {"probe": user_probes, "classifier": user_classifiers, "segmentation": user_seg_models}[loaded.kind]()
    registry[f"{name} · {loaded.model.config.label if loaded.kind == 'probe' else loaded.model.arch}"] = loaded.model
    log[name] = ("ok", f"{loaded.kind}: {loaded.label}")
    return loaded.kind


def render_checkpoint_uploader() -> None:
    """Upload probe, classifier or segmentation checkpoints; each is loaded once per (file, settings) and listed with its status."""
    # A key keeps the expander the same element (open as the user left it) when messages above it come and go.
    with st.sidebar.expander("Your checkpoints", key="ckpt_expander", on_change="rerun"):
        files = st.file_uploader("Checkpoint files (.pt / .pth / .safetensors / .onnx)", accept_multiple_files=True,
                                 key="ckpt_uploads",
                                 help="Probe checkpoints written by this app; for the channel code page an image "
                                      "classifier: a torchvision state dict (ResNet, MobileNet), a timm state dict (name "
                                      "its architecture below) or an ONNX classifier; or segmentation weights: this "
                                      "app's, or a torchvision DeepLabV3/FCN state dict. State dicts (.pt / .pth / "
                                      ".safetensors) may be plain or under model_state / state_dict / model, module. "
                                      "prefixes ok. Nothing in a file runs. Kept in memory for this session only.")
        arch = st.selectbox("Architecture", ["auto", *CLASSIFIER_ARCHS, *ARCHS], key="ckpt_arch",
                            help="auto = told from the weights' keys")
        timm_arch = st.text_input("…or a timm architecture", key="ckpt_timm", placeholder="e.g. resnet18",
                                  help="For a timm state dict: the architecture name (timm.list_models()); built "
                                       "without downloading anything.").strip()
        arch = f"timm:{timm_arch}" if timm_arch else arch
        config = st.selectbox("Segmentation settings", CONFIGS, format_func=CONFIG_LABELS.get, key="ckpt_config",
                              help="Weights do not record output stride or ASPP rates. The paper's DeepLabV3-ResNet-50 "
                                   "used stride 16 and rates 6/12/18.")
        path = st.text_input("…or a checkpoint path on the server", key="ckpt_path", disabled=not path_boxes_on(),
                             help=path_help("For files above the upload size limit (e.g. a ResNet-101 DeepLabV3).")).strip()
        seen = st.session_state.setdefault("ckpt_seen", set())
        _load_kept(seen)
        for file in files or []:
            if (file.file_id, arch, config) not in seen:
                seen.add((file.file_id, arch, config))
                if _load(file.getvalue(), file.name, arch, config) == "probe":
                    _keep_probe(file.getvalue(), file.name)
        if path and (path, arch, config) not in seen:
            seen.add((path, arch, config))
            log = st.session_state.setdefault("ckpt_log", {})
            for earlier in st.session_state.pop("ckpt_path_errors", []):  # one message for the path box: the latest
                if log.get(earlier, ("ok",))[0] == "error":
                    del log[earlier]
            try:
                _load(server_path(path), Path(path).name, arch, config)
            except PathRefused as err:
                log[Path(path).name] = ("error", str(err))
            st.session_state.ckpt_path_errors = [Path(path).name]
        for name, (status, text) in st.session_state.get("ckpt_log", {}).items():
            if status == "error":
                st.error(text if name in text else f"**{name}**: {text}")  # most messages name the file already
            else:
                st.caption(f"**{name}**: {text}")
