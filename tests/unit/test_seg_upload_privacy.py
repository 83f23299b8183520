"""Nothing derived from an uploaded model is kept on disk."""
from dataclasses import replace

from engine.data.scenes import SceneConfig, generate
from engine.models.segmentation import load_model
from engine.seg.ranking import rank


def test_rankings_of_an_uploaded_model_stay_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    shipped = load_model()
    data = generate(SceneConfig("val", 6, 128, 256, seed=11))
    uploaded = replace(shipped, meta={**shipped.meta, "uploaded": True})
    kept = rank(uploaded, data, "overall")
    assert not list(tmp_path.rglob("*.json"))
    again = rank(shipped, data, "overall")  # the same weights, not uploaded: cached as usual
    assert list(tmp_path.rglob("*.json"))
    assert (kept.order == again.order).all()
