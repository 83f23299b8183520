"""Procedural driving scenes with Cityscapes train-id labels (no download possible).

Drive-on-the-right geometry seen from the ego car: a perspective road towards a vanishing point,
oncoming cars in the left lane seen from the front (headlights, windscreen), cars ahead in the
right lane seen from behind (tail lights, plate), sidewalks, building facades, trees, poles with
signs, and pedestrians on either sidewalk. Lighting, colours, textures, noise and the camera
(vanishing point) are random. Image ``i`` of a split depends only on ``(seed, split, i)``, so a
subset or a larger set always contains the same images.

Two layouts, identical pixels, different labels (the lever that makes a model need absolute position):
- ``divided`` (default): the strip left of the oncoming lane is a concrete median (Cityscapes ``wall``)
  drawn with exactly the sidewalk's colours and grain; the strip on the right is ``sidewalk``. Their local
  look is the same, so only horizontal position tells them apart, as for a real divided road. The ego car
  drives in the right lane, so the road's centre line (and everything on the left) lies left of the camera:
  the median looks narrower and farther than the sidewalk, as on a real drive-on-the-right road.
- ``street``: both strips are ``sidewalk`` and the camera is on the road's centre line (the generator before
  the divided layout; its images are unchanged).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch

from engine.core.storage import cache_dir, fingerprint, stored
from engine.data.cityscapes_classes import PERSON, TRAIN_ID

SPLITS = {"train": 1, "val": 2, "rank": 3}  # rank: held out for channel rankings, disjoint from train and val
LAYOUTS = ("divided", "street")
ROAD, SIDEWALK, BUILDING, POLE = TRAIN_ID["road"], TRAIN_ID["sidewalk"], TRAIN_ID["building"], TRAIN_ID["pole"]
SIGN, VEG, TERRAIN, SKY, CAR = TRAIN_ID["traffic sign"], TRAIN_ID["vegetation"], TRAIN_ID["terrain"], TRAIN_ID["sky"], TRAIN_ID["car"]
WALL = TRAIN_ID["wall"]
KEPT_BYTES = 64 * 2**20  # sets up to this size are kept in the cache folder (the lab's 200 val and 300 rank: 26, 39 MB)


@dataclass(frozen=True)
class SceneConfig:
    """Which generated images: split, how many, their size (2:1), the seed and the layout."""

    split: str = "val"
    count: int = 200
    height: int = 128
    width: int = 256
    seed: int = 0
    layout: str = "divided"

    def as_dict(self) -> dict:
        """JSON form, for cache keys and model cards."""
        return {"kind": "scenes", "split": self.split, "count": self.count, "height": self.height,
                "width": self.width, "seed": self.seed, "layout": self.layout}


@dataclass
class SceneSet:
    """Images (N,H,W,3 uint8), train-id labels (N,H,W uint8), pedestrian sides and a key naming the data."""

    images: np.ndarray
    labels: np.ndarray
    pedestrian_sides: list[tuple[str, ...]]
    key: dict


class _Canvas:
    """Paints labels and colours together, clipped to the image, painter's order."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.rgb = np.zeros((h, w, 3), np.float32)
        self.lab = np.full((h, w), SKY, np.uint8)

    def fill(self, mask: np.ndarray, label: int, color: np.ndarray) -> None:
        self.lab[mask] = label
        self.rgb[mask] = color if np.ndim(color) == 1 else color[mask]

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice] | None:
        xa, xb = max(0, int(round(x0))), min(self.w, int(round(x1)))
        ya, yb = max(0, int(round(y0))), min(self.h, int(round(y1)))
        return (slice(ya, yb), slice(xa, xb)) if xb > xa and yb > ya else None

    def rect(self, x0: float, y0: float, x1: float, y1: float, label: int, color: np.ndarray) -> None:
        box = self._box(x0, y0, x1, y1)
        if box:
            self.lab[box] = label
            self.rgb[box] = color

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, label: int, color: np.ndarray) -> None:
        box = self._box(cx - rx, cy - ry, cx + rx + 1, cy + ry + 1)
        if box:
            yy, xx = np.ogrid[box[0], box[1]]
            m = ((xx - cx) / max(rx, 0.5)) ** 2 + ((yy - cy) / max(ry, 0.5)) ** 2 <= 1.0
            self.lab[box][m] = label
            self.rgb[box][m] = color


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ys, xs


def _jitter(rng: np.random.Generator, base: tuple[float, float, float], amount: float = 0.12) -> np.ndarray:
    return np.clip(np.array(base, np.float32) / 255 + rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)


def _background(c: _Canvas, rng: np.random.Generator, vx: float, vy: float, rw: float, sw: float, tw: float,
                layout: str, off: float) -> None:
    """Sky, facades (segments along the street with windows), road, lane marks, sidewalks (or median), verges."""
    h, w = c.h, c.w
    ys, xs = _grid(h, w)
    sky_top, sky_bottom = _jitter(rng, (90, 140, 200), 0.15), _jitter(rng, (190, 210, 230), 0.1)
    frac = (ys / h)[..., None]
    c.rgb[:] = sky_top * (1 - frac) + sky_bottom * frac
    dx = xs - vx
    t = np.clip((ys - vy) / (h - vy), 0, None)
    lateral = rw + sw + tw
    for side in (-1.0, 1.0):
        half = side * dx > 0
        tf = np.where(half, side * dx / (lateral - side * off), 0)  # depth parameter of the facade at this column
        depth = 1.0 / np.maximum(tf, 1e-3)
        bounds = np.cumsum(rng.uniform(0.4, 2.0, 24)) + 0.6
        heights = rng.uniform(0.5, 1.8, 25) * h * np.where(rng.random(25) < 0.15, 0, 1)  # gaps
        colors = np.stack([_jitter(rng, (120, 110, 100), 0.25) for _ in range(25)])
        seg = np.searchsorted(bounds, depth)
        top = vy - tf * heights[seg]
        bottom = vy + tf * (h - vy)
        facade = half & (ys > top) & (ys <= bottom) & (tf > 0)
        col = colors[seg]
        v = (ys - top) / np.maximum(bottom - top, 1)
        window = ((depth * 4.0) % 1 < 0.45) & ((v * 8) % 1 > 0.35) & (v < 0.85)
        col = np.where(window[..., None], col * 0.45 + 0.1, col)
        c.fill(facade, BUILDING, col)
    ground = ys > vy
    adx = np.abs(dx + t * off)  # lateral distance from the road's centre line (the camera is ``off`` right of it)
    grain = rng.normal(0, 0.025, (h, w, 1)).astype(np.float32)
    road_col = _jitter(rng, (90, 88, 95), 0.08) + grain
    c.fill(ground & (adx < t * rw), ROAD, road_col)
    mark = ground & (adx < t * w * 0.006 + 0.6) & ((1.0 / np.maximum(t, 1e-3)) % 1.0 < 0.5) & (t > 0.05)
    c.fill(mark, ROAD, np.array([0.9, 0.9, 0.85], np.float32))
    strip = ground & (adx >= t * rw) & (adx < t * (rw + sw))
    strip_col = _jitter(rng, (170, 150, 160), 0.1) + grain
    c.fill(strip, SIDEWALK, strip_col)
    if layout == "divided":
        c.lab[strip & (dx + t * off < 0)] = WALL  # the median: same pixels as the sidewalk, told apart only by side
    if tw > 0:
        c.fill(ground & (adx >= t * (rw + sw)) & (adx < t * lateral), TERRAIN, _jitter(rng, (110, 160, 80), 0.1) + grain)


def _car(c: _Canvas, rng: np.random.Generator, cx: float, bottom: float, width: float, front: bool) -> None:
    """A car seen from the front (oncoming: windscreen, headlights) or from behind (tail lights, plate)."""
    hgt = width * 0.8
    body = _jitter(rng, tuple(rng.uniform(20, 235, 3)), 0.05)
    x0, x1 = cx - width / 2, cx + width / 2
    c.rect(x0 + width * 0.06, bottom - hgt * 0.12, x0 + width * 0.22, bottom, CAR, np.full(3, 0.06, np.float32))
    c.rect(x1 - width * 0.22, bottom - hgt * 0.12, x1 - width * 0.06, bottom, CAR, np.full(3, 0.06, np.float32))
    c.rect(x0, bottom - hgt * 0.6, x1, bottom - hgt * 0.1, CAR, body)
    c.rect(x0 + width * 0.12, bottom - hgt, x1 - width * 0.12, bottom - hgt * 0.6, CAR, body * 0.9)
    glass = np.array([0.55, 0.65, 0.75], np.float32) if front else np.array([0.1, 0.1, 0.13], np.float32)
    c.rect(x0 + width * 0.17, bottom - hgt * 0.93, x1 - width * 0.17, bottom - hgt * 0.62, CAR, glass)
    ly = bottom - hgt * 0.45
    if front:
        light = np.array([1.0, 0.97, 0.8], np.float32)
        c.ellipse(x0 + width * 0.14, ly, width * 0.08, hgt * 0.06, CAR, light)
        c.ellipse(x1 - width * 0.14, ly, width * 0.08, hgt * 0.06, CAR, light)
        c.rect(cx - width * 0.2, ly - hgt * 0.05, cx + width * 0.2, ly + hgt * 0.08, CAR, np.full(3, 0.15, np.float32))
    else:
        red = np.array([0.85, 0.05, 0.05], np.float32)
        c.rect(x0 + width * 0.02, ly - hgt * 0.06, x0 + width * 0.2, ly + hgt * 0.04, CAR, red)
        c.rect(x1 - width * 0.2, ly - hgt * 0.06, x1 - width * 0.02, ly + hgt * 0.04, CAR, red)
        c.rect(cx - width * 0.12, ly + hgt * 0.08, cx + width * 0.12, ly + hgt * 0.2, CAR, np.full(3, 0.95, np.float32))


def _pedestrian(c: _Canvas, rng: np.random.Generator, cx: float, foot: float, hgt: float) -> tuple[slice, slice] | None:
    """A standing person: head, torso, arms, two legs; returns its box (clipped to the image)."""
    skin = _jitter(rng, (200, 160, 130), 0.15)
    shirt, trousers = _jitter(rng, tuple(rng.uniform(20, 235, 3)), 0.05), _jitter(rng, tuple(rng.uniform(20, 150, 3)), 0.05)
    stride = rng.uniform(0.0, 0.08) * hgt
    c.rect(cx - hgt * 0.1 - stride, foot - hgt * 0.47, cx - hgt * 0.01 - stride / 2, foot, PERSON, trousers)
    c.rect(cx + hgt * 0.01 + stride / 2, foot - hgt * 0.47, cx + hgt * 0.1 + stride, foot, PERSON, trousers)
    c.rect(cx - hgt * 0.13, foot - hgt * 0.82, cx + hgt * 0.13, foot - hgt * 0.45, PERSON, shirt)
    c.rect(cx - hgt * 0.18, foot - hgt * 0.8, cx - hgt * 0.13, foot - hgt * 0.5, PERSON, shirt * 0.9)
    c.rect(cx + hgt * 0.13, foot - hgt * 0.8, cx + hgt * 0.18, foot - hgt * 0.5, PERSON, shirt * 0.9)
    c.ellipse(cx, foot - hgt * 0.9, hgt * 0.075, hgt * 0.09, PERSON, skin)
    return c._box(cx - hgt * 0.18 - stride, foot - hgt, cx + hgt * 0.18 + stride, foot)


def render_scene(rng: np.random.Generator, height: int = 128, width: int = 256,
                 layout: str = "divided") -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """One street scene: RGB uint8 (H,W,3), train-id labels (H,W) and the sides of its pedestrians."""
    h, w = height, width
    c = _Canvas(h, w)
    vy, vx = h * rng.uniform(0.36, 0.46), w * rng.uniform(0.42, 0.58)
    rw, sw = w * rng.uniform(0.45, 0.6), w * rng.uniform(0.16, 0.28)
    tw = w * rng.uniform(0.05, 0.15) if rng.random() < 0.5 else 0.0
    off = rw * rng.uniform(0.1, 0.3) if layout == "divided" else 0.0  # ego car in the right lane
    _background(c, rng, vx, vy, rw, sw, tw, layout, off)

    def base(t: float) -> float:
        return vy + t * (h - vy)

    objects: list[tuple[float, object]] = []
    for side in (-1.0, 1.0):
        for t in rng.uniform(0.1, 1.1, rng.integers(1, 5)):  # trees on the outer sidewalk edge
            x, th = vx + t * (side * (rw + sw * 0.88) - off), t * h * rng.uniform(0.9, 1.3)
            green = _jitter(rng, (70, 120, 50), 0.1)
            objects.append((t, lambda x=x, t=t, th=th, g=green: (
                c.rect(x - t * w * 0.01, base(t) - th * 0.45, x + t * w * 0.01, base(t), VEG, g * 0.55),
                c.ellipse(x, base(t) - th * 0.62, th * 0.26, th * 0.24, VEG, g))))
        for t in rng.uniform(0.1, 1.1, rng.integers(0, 4)):  # poles, some carrying a sign
            x, ph, sign = vx + t * (side * (rw + sw * 0.15) - off), t * h * 0.95, rng.random() < 0.5
            objects.append((t, lambda x=x, t=t, ph=ph, sign=sign: (
                c.rect(x - max(1.0, t * w * 0.012), base(t) - ph, x + max(1.0, t * w * 0.012), base(t), POLE,
                       np.array([0.5, 0.5, 0.52], np.float32)),
                sign and c.rect(x - t * w * 0.035, base(t) - ph, x + t * w * 0.035, base(t) - ph * 0.85, SIGN,
                                np.array([0.9, 0.85, 0.1], np.float32)))))
        for t in rng.uniform(0.12, 0.9, rng.integers(0, 4)):  # left lane oncoming (front), right lane ahead (rear)
            objects.append((t, lambda t=t, s=side: _car(c, rng, vx + t * (s * rw * 0.5 - off), base(t), t * rw * 0.78, front=s < 0)))
    mode = rng.choice(["left", "right", "both", "none"], p=[0.35, 0.35, 0.2, 0.1])
    boxes: list[tuple[str, tuple[slice, slice] | None]] = []
    for name, side in (("left", -1.0), ("right", 1.0)):
        if mode in (name, "both"):
            for t in rng.uniform(0.3, 0.95, rng.integers(1, 4)):
                x = vx + t * (side * (rw + sw * rng.uniform(0.3, 0.7)) - off)
                objects.append((t, lambda x=x, t=t, name=name: boxes.append(
                    (name, _pedestrian(c, rng, x, base(t) + 1, t * h * rng.uniform(0.5, 0.6))))))
    for _, draw in sorted(objects, key=lambda o: o[0]):
        draw()
    sides = [name for name, box in boxes if box and (c.lab[box] == PERSON).any()]  # visible ones only
    light = rng.uniform(0.6, 1.3) * _jitter(rng, (255, 255, 255), 0.08)
    img = c.rgb * light + rng.normal(0, rng.uniform(0.01, 0.05), (h, w, 3)).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), c.lab, tuple(sides)


def _render_range(config: SceneConfig, start: int, stop: int) -> list[tuple[np.ndarray, np.ndarray, tuple[str, ...]]]:
    return [render_scene(np.random.default_rng([config.seed, SPLITS[config.split], i]), config.height, config.width, config.layout)
            for i in range(start, stop)]


def generate(config: SceneConfig, workers: int = 1) -> SceneSet:
    """All images of a config; image ``i`` is seeded by ``(seed, split, i)`` alone (so ``workers`` changes nothing)."""
    if config.split not in SPLITS:
        raise ValueError(f"unknown split {config.split!r}; expected one of {sorted(SPLITS)}")
    if config.layout not in LAYOUTS:
        raise ValueError(f"unknown layout {config.layout!r}; expected one of {LAYOUTS}")
    if config.width != 2 * config.height or config.height % 16:
        raise ValueError("scenes are 2:1 with a height divisible by 16 (e.g. 128x256, 512x1024)")
    step = max(1, -(-config.count // max(workers, 1)))
    bounds = [(a, min(a + step, config.count)) for a in range(0, config.count, step)]
    if workers > 1 and len(bounds) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_range, [config] * len(bounds), *zip(*bounds)))
    else:
        parts = [_render_range(config, a, b) for a, b in bounds]
    scenes = [s for part in parts for s in part]
    images = np.stack([s[0] for s in scenes]) if scenes else np.empty((0, config.height, config.width, 3), np.uint8)
    labels = np.stack([s[1] for s in scenes]) if scenes else np.empty((0, config.height, config.width), np.uint8)
    return SceneSet(images, labels, [s[2] for s in scenes], config.as_dict())


@cache
def _renderer_version() -> str:
    return hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:16]


def kept(config: SceneConfig, workers: int = 1) -> SceneSet:
    """``generate(config, workers)``, rendered once per cache folder: a set of up to ``KEPT_BYTES`` is kept in
    ``cache_dir()/seg/scenes/`` under its config and this renderer's source, so a new process reads it back."""
    if config.count * config.height * config.width * 4 > KEPT_BYTES:
        return generate(config, workers)

    def render() -> dict:
        scenes = generate(config, workers)
        return {"images": torch.from_numpy(scenes.images), "labels": torch.from_numpy(scenes.labels),
                "sides": scenes.pedestrian_sides}

    path = cache_dir() / "seg" / "scenes" / f"{fingerprint(config.as_dict(), _renderer_version())}.pt"
    saved = stored(path, render)
    return SceneSet(saved["images"].numpy(), saved["labels"].numpy(), [tuple(s) for s in saved["sides"]], config.as_dict())


def person_subsets(labels: np.ndarray, person: int = PERSON) -> dict[str, np.ndarray]:
    """Indices of images whose person pixels lie only in the left / right half (val-left / val-right)."""
    w = labels.shape[-1]
    is_person = labels == person
    left = is_person[..., : w // 2].reshape(len(labels), -1).any(1)
    right = is_person[..., w // 2:].reshape(len(labels), -1).any(1)
    return {"left": np.flatnonzero(left & ~right), "right": np.flatnonzero(right & ~left)}
