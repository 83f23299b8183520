"""The sidebar's checkpoint uploader and the session registries every page reads its user models from.

Uploaded bytes are loaded in memory (``weights_only=True``); files above the upload limit can be given by a path
inside the data root instead (see ``ui.paths``). The models live in this session's state: probes in ``user_probes``
(the grid probe and channel code pages list them), image classifiers in ``user_classifiers`` (the channel code page
lists them), segmentation models in ``user_seg_models`` (the segmentation lab lists them). Every checkpoint that loads
is also named in the URL, so a reload or the link loads it again with the same settings into the same registry: an
upload by its content hash (``?ckpt=<hash>``; the file and its settings are kept on this server within a size budget,
``engine.models.kept_checkpoints``), a server path as itself (``?ckpt_path=<path>``; read again only where path boxes are on).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.core.paths import PathRefused
from engine.core.storage import CheckpointError
from engine.models.kept_checkpoints import BUDGET_ENV, KeptCheckpoints, KeptGone, Settings
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
    """Image classifiers (torchvision or timm state dicts, ONNX) this session loaded, by display name."""
    return st.session_state.setdefault("user_classifiers", {})


KEPT_PARAM, PATH_PARAM = "ckpt", "ckpt_path"


def _keep(source: bytes | str, settings: Settings) -> None:
    """Keep a checkpoint that loaded and name it in the URL (an upload by its content hash, a server path as itself):
    a reload or the link loads it again with the same settings."""
    kept = KeptCheckpoints()
    try:
        if isinstance(source, bytes):
            param, value = KEPT_PARAM, kept.keep(source, settings)
        else:
            kept.remember(source, settings)
            param, value = PATH_PARAM, source
    except OSError as err:  # a full or read-only disk: the model is loaded, only a reload loses it
        st.session_state.setdefault("ckpt_log", {})[f"{settings.name} (not kept)"] = (
            "error", f"{settings.name} is loaded but could not be kept on this server for a reload ({err.strerror}).")
        return
    st.session_state.setdefault("ckpt_seen", set()).add((param, value))
    _name_in_url(param, value)


def _name_in_url(param: str, value: str) -> None:
    """Name a loaded checkpoint in the URL for the rest of this session."""
    named = st.session_state.setdefault("ckpt_named", {}).setdefault(param, [])
    if value not in named:
        named.append(value)
    _restore_url()


def _restore_url() -> None:
    """Put back the session's checkpoints that the URL no longer names: moving to another page clears its parameters."""
    for param, values in st.session_state.get("ckpt_named", {}).items():
        listed = st.query_params.get_all(param)
        if missing := [value for value in values if value not in listed]:
            st.query_params[param] = [*listed, *missing]


def _load_kept(seen: set) -> None:
    """The checkpoints this URL names (``?ckpt=``, ``?ckpt_path=``), each loaded once per session with its kept
    settings; a gone, refused or bad one is said once."""
    kept = KeptCheckpoints()
    for param in (KEPT_PARAM, PATH_PARAM):
        for value in st.query_params.get_all(param):
            if (param, value) in seen:
                continue
            seen.add((param, value))
            try:
                if param == KEPT_PARAM:
                    source, settings = kept.upload(value)
                else:
                    source = server_path(value)
                    settings = kept.settings_at(source)
            except (KeptGone, PathRefused) as err:
                name = f"link checkpoint {value[:8]}" if param == KEPT_PARAM else Path(value).name
                st.session_state.setdefault("ckpt_log", {})[name] = ("error", str(err))
                continue
            if _load(source, settings):
                _name_in_url(param, value)


def _load(source: bytes | str | Path, settings: Settings) -> bool:
    """Load a checkpoint into its registry and log how it went; whether it loaded."""
    log = st.session_state.setdefault("ckpt_log", {})
    try:
        loaded = load_user_checkpoint(source, settings.name, settings.arch, settings.config)
    except (CheckpointError, ValueError) as err:
        log[settings.name] = ("error", str(err))
        return False
    if loaded.kind == "segmentation":
        loaded.model.meta["uploaded"] = True  # its latents stay in memory, never in the disk cache
    registry = {"probe": user_probes, "classifier": user_classifiers, "segmentation": user_seg_models}[loaded.kind]()
    registry[f"{settings.name} · {loaded.model.config.label if loaded.kind == 'probe' else loaded.model.arch}"] = loaded.model
    log[settings.name] = ("ok", f"{loaded.kind}: {loaded.label}")
    return True


def render_checkpoint_uploader() -> None:
    """Upload probe, classifier or segmentation checkpoints; each is loaded once per (file, settings) and listed with its status."""
    kept = KeptCheckpoints()
    # A key keeps the expander the same element (open as the user left it) when messages above it come and go.
    with st.sidebar.expander("Your checkpoints", key="ckpt_expander", on_change="rerun"):
        files = st.file_uploader("Checkpoint files (.pt / .pth / .safetensors / .onnx)", accept_multiple_files=True,
                                 key="ckpt_uploads",
                                 help="Probe checkpoints written by this app; for the channel code page an image "
                                      "classifier: a torchvision state dict (ResNet, MobileNet), a timm state dict (name "
                                      "its architecture below) or an ONNX classifier; or segmentation weights: this "
                                      "app's, or a torchvision DeepLabV3/FCN state dict. State dicts (.pt / .pth / "
                                      ".safetensors) may be plain or under model_state / state_dict / model, module. "
                                      "prefixes ok. Nothing in a file runs. Each file that loads is kept on this server "
                                      f"(up to {kept.budget_bytes / 2**20:,.0f} MB of uploads in all, {BUDGET_ENV}; the "
                                      "least recently used go first) and named in the page's URL: a reload or the link "
                                      "loads it again with the same settings.")
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
                             help=path_help("For files above the upload size limit (e.g. a ResNet-101 DeepLabV3). Named "
                                           "in the page's URL too: a reload reads it again.")).strip()
        seen = st.session_state.setdefault("ckpt_seen", set())
        _restore_url()
        _load_kept(seen)
        for file in files or []:
            if (file.file_id, arch, config) not in seen:
                seen.add((file.file_id, arch, config))
                settings = Settings(file.name, arch, config)
                if _load(file.getvalue(), settings):
                    _keep(file.getvalue(), settings)
        if path and (path, arch, config) not in seen:
            seen.add((path, arch, config))
            log = st.session_state.setdefault("ckpt_log", {})
            for earlier in st.session_state.pop("ckpt_path_errors", []):  # one message for the path box: the latest
                if log.get(earlier, ("ok",))[0] == "error":
                    del log[earlier]
            settings = Settings(Path(path).name, arch, config)
            try:
                resolved = server_path(path)
            except PathRefused as err:
                log[settings.name] = ("error", str(err))
            else:
                if _load(resolved, settings):
                    _keep(resolved, settings)
            st.session_state.ckpt_path_errors = [Path(path).name]
        for name, (status, text) in st.session_state.get("ckpt_log", {}).items():
            if status == "error":
                st.error(text if name in text else f"**{name}**: {text}")  # most messages name the file already
            else:
                st.caption(f"**{name}**: {text}")
