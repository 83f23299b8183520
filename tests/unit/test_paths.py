"""Server paths from the browser: confined to the data root, and messages that leak nothing about the server."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from engine.core.paths import ROOT_ENV, PathRefused, confine, data_root
from engine.core.storage import CheckpointError, load_torch
from engine.data.patches import DataError, open_patch_source
from engine.models.user_models import load_user_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data root holding one folder and a file, beside a secret folder outside it."""
    (tmp_path / "data" / "cifar").mkdir(parents=True)
    (tmp_path / "data" / "model.pt").write_bytes(b"")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("do not read")
    return (tmp_path / "data").resolve()


def test_paths_inside_the_root_resolve(root):
    assert confine(str(root / "cifar"), root) == root / "cifar"
    assert confine("cifar", root) == root / "cifar"  # relative to the root
    assert confine("cifar/../model.pt", root) == root / "model.pt"
    assert confine("missing/later", root) == root / "missing" / "later"  # inside, even before it exists


@pytest.mark.parametrize("text", ["/etc", "/etc/passwd", "..", "../secret/key", "cifar/../../secret", "~nobody-here/x", "a\0b"])
def test_paths_outside_the_root_are_refused(root, text):
    with pytest.raises(PathRefused, match="outside"):
        confine(text, root)


def test_a_symlink_out_of_the_root_is_refused(root):
    (root / "link").symlink_to(root.parent / "secret")
    with pytest.raises(PathRefused, match="outside"):
        confine("link/key", root)
    (root / "inner").symlink_to(root / "cifar")  # a link that stays inside is fine
    assert confine("inner", root) == root / "cifar"


def test_the_root_depends_on_the_bind_address_and_the_environment(tmp_path):
    home = Path.home().resolve()
    assert data_root("127.0.0.1", {}) == home and data_root("localhost", {}) == home and data_root("[::1]", {}) == home
    assert data_root("0.0.0.0", {}) is None and data_root(None, {}) is None and data_root("", {}) is None  # reachable from others
    assert data_root("0.0.0.0", {ROOT_ENV: str(tmp_path)}) == tmp_path.resolve()  # a root set for a hosted server
    with pytest.raises(PathRefused, match="no folder or file paths") as err:
        confine(str(home), None)
    assert str(home) not in str(err.value)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


CHECKPOINTS = {"random bytes": (bytes(torch.randint(256, (4096,), generator=torch.Generator().manual_seed(0)).tolist()),
                                "random.pt is not a PyTorch checkpoint"),
               "empty": (b"", "random.pt is empty, not a PyTorch checkpoint"),
               "text": (b"root:x:0:0:root:/root:/bin/bash\n", "random.pt is not a PyTorch checkpoint"),
               "code": (_saved({"weight": torch.ones(1), "hook": print}), "pickled code")}


@pytest.mark.parametrize("data,phrase", CHECKPOINTS.values(), ids=CHECKPOINTS)
def test_checkpoint_messages_name_the_file_once_and_quote_no_internals(tmp_path, data, phrase):
    (tmp_path / "random.pt").write_bytes(data)
    for source in (data, tmp_path / "random.pt"):
        with pytest.raises(CheckpointError) as err:
            load_user_checkpoint(source, "random.pt")
        text = str(err.value)
        assert phrase in text and text.count("random.pt") == 1
        assert "(" not in text.replace("state_dict()", "") and "Unpickler" not in text and "root:x" not in text


def test_a_folder_given_as_a_checkpoint_says_so_without_listing_it(root):
    with pytest.raises(CheckpointError) as err:
        load_torch(root, "data")
    assert str(err.value) == "data is a folder, not a checkpoint file."


def test_a_folder_that_is_no_dataset_is_not_listed(tmp_path):
    for name in (".ssh", "private-notes", "passwords"):
        (tmp_path / name).mkdir()
    with pytest.raises(DataError) as err:
        open_patch_source(tmp_path)
    assert "one sub-folder per class" in str(err.value)
    assert not any(name in str(err.value) for name in (".ssh", "private-notes", "passwords"))


def _app(monkeypatch, address: str | None, root: Path | None) -> AppTest:
    import ui.paths

    monkeypatch.setattr(ui.paths, "bind_address", lambda: address)
    if root is None:
        monkeypatch.delenv(ROOT_ENV, raising=False)
    else:
        monkeypatch.setenv(ROOT_ENV, str(root))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


def test_sidebar_path_boxes_are_off_on_a_reachable_server_without_a_root(monkeypatch):
    at = _app(monkeypatch, "0.0.0.0", None)
    assert not at.exception
    assert at.text_input(key="data_path").disabled and at.text_input(key="ckpt_path").disabled
    assert not any("cache:" in c.value for c in at.sidebar.caption)  # no server folder shown to remote users


def test_sidebar_refuses_paths_outside_the_root_and_says_a_dataset_problem_once(monkeypatch, root):
    at = _app(monkeypatch, "0.0.0.0", root)
    assert not at.text_input(key="data_path").disabled
    at.text_input(key="data_path").set_value(str(root.parent / "secret")).run()
    at.switch_page("pages/grid_probe.py").run()  # a page that reads the dataset too
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "outside" in errors[0] and "key" not in errors[0]
    at.text_input(key="data_path").set_value("cifar").run()  # inside, but no dataset: one message, nothing listed
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "one sub-folder per class" in errors[0]
    at.text_input(key="ckpt_path").set_value("../secret/key").run()
    assert any("outside" in e.value for e in at.sidebar.error)
    at.text_input(key="ckpt_path").set_value("cifar").run()
    assert any(e.value == "cifar is a folder, not a checkpoint file." for e in at.sidebar.error)
