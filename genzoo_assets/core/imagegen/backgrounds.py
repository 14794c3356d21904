"""Procedural photographic-style backgrounds: sky over ground with a horizon, textures, bokeh.

No image files ship with the package, so scenes are built from the ingredients a photo has at
low frequency — a bright sky gradient, a textured ground plane receding to a horizon, blurred
shapes of vegetation or rocks out of focus — all drawn from the sample's seeded generator.
"""

from __future__ import annotations

import cv2
import numpy as np

GROUNDS = {  # (near colour, far colour), sRGB 0..1
    "grass": ((0.25, 0.42, 0.14), (0.45, 0.55, 0.32)),
    "dry_grass": ((0.58, 0.5, 0.3), (0.72, 0.66, 0.5)),
    "sand": ((0.76, 0.66, 0.48), (0.86, 0.8, 0.66)),
    "snow": ((0.86, 0.88, 0.92), (0.94, 0.95, 0.98)),
    "soil": ((0.36, 0.27, 0.19), (0.52, 0.44, 0.36)),
    "floor": ((0.55, 0.45, 0.36), (0.7, 0.62, 0.54)),
}
SHAPE_COLOURS = (  # foliage, dry foliage, rock, bark, distant haze
    (0.2, 0.33, 0.12),
    (0.32, 0.42, 0.18),
    (0.5, 0.48, 0.3),
    (0.46, 0.45, 0.43),
    (0.35, 0.26, 0.18),
    (0.6, 0.66, 0.72),
)
SKIES = {
    "clear": ((0.38, 0.6, 0.9), (0.78, 0.86, 0.95)),
    "overcast": ((0.62, 0.65, 0.7), (0.84, 0.85, 0.87)),
    "dusk": ((0.3, 0.34, 0.6), (0.95, 0.68, 0.45)),
    "forest": ((0.18, 0.3, 0.16), (0.42, 0.52, 0.34)),
    "wall": ((0.78, 0.74, 0.68), (0.86, 0.83, 0.78)),
}


def value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: random values on a ``cells`` grid, bicubically upsampled."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def fractal_noise(
    rng: np.random.Generator, h: int, w: int, octaves: int = 4, base: int = 4
) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for o in range(octaves):
        amp = 0.5**o
        out += amp * value_noise(rng, h, w, base * 2**o)
        total += amp
    return out / total


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 sRGB in [0, 1]."""
    sky_name = list(SKIES)[rng.integers(len(SKIES))]
    ground_name = list(GROUNDS)[rng.integers(len(GROUNDS))]
    horizon = rng.uniform(0.15, 0.6) * h
    ys = np.arange(h, dtype=np.float32)[:, None]
    tilt = rng.uniform(-0.08, 0.08) * (np.arange(w, dtype=np.float32)[None] - w / 2)
    horizon_line = horizon + tilt + 0.04 * h * (fractal_noise(rng, 1, w, 3, 3)[0] - 0.5)

    top, low = (np.asarray(c, np.float32) for c in SKIES[sky_name])
    t_sky = np.clip(ys / max(horizon, 1.0), 0, 1)[..., None]
    sky = top * (1 - t_sky) + low * t_sky
    sky = sky * (0.9 + 0.2 * fractal_noise(rng, h, w, 3, 2))[..., None]

    near, far = (np.asarray(c, np.float32) for c in GROUNDS[ground_name])
    t_ground = np.clip((ys - horizon_line) / max(h - horizon, 1.0), 0, 1)[..., None]
    ground = far * (1 - t_ground) + near * t_ground
    texture = fractal_noise(rng, h, w, 5, 6)
    ground = (
        ground * (0.75 + 0.5 * texture)[..., None] * (0.85 + 0.3 * rng.random(3, dtype=np.float32))
    )

    blend = np.clip((ys - horizon_line) / (0.015 * h + 1), 0, 1)[..., None]
    img = sky * (1 - blend) + ground * blend
    img = _out_of_focus_shapes(rng, img, horizon_line)
    return np.clip(img, 0, 1).astype(np.float32)


def _out_of_focus_shapes(
    rng: np.random.Generator, img: np.ndarray, horizon_line: np.ndarray
) -> np.ndarray:
    """Blurred ellipses and polygons (bushes, rocks, trees) around the horizon."""
    h, w = img.shape[:2]
    layer = np.zeros_like(img)
    alpha = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 12))):
        x = int(rng.uniform(0, w))
        y = int(np.clip(horizon_line[0, min(x, w - 1)] + rng.normal(0, 0.08 * h), 0, h - 1))
        tint = np.asarray(SHAPE_COLOURS[rng.integers(len(SHAPE_COLOURS))], np.float32)
        colour = np.clip(0.6 * tint * rng.uniform(0.7, 1.3) + 0.4 * img[y, x], 0, 1)
        shape = np.zeros((h, w), np.uint8)
        if rng.random() < 0.6:
            axes = (int(rng.uniform(0.03, 0.2) * w), int(rng.uniform(0.02, 0.12) * h))
            cv2.ellipse(shape, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        else:
            pts = np.stack(
                [x + rng.normal(0, 0.07 * w, 6), y + rng.normal(0, 0.06 * h, 6)], 1
            ).astype(np.int32)
            cv2.fillPoly(shape, [cv2.convexHull(pts)], 255)
        a = shape.astype(np.float32) / 255.0
        layer = layer * (1 - a[..., None]) + colour * a[..., None]
        alpha = np.maximum(alpha, a)
    # ``layer`` sits on black with coverage ``alpha``: it is premultiplied, so blur both and blend.
    sigma = rng.uniform(0.004, 0.02) * w
    opacity = rng.uniform(0.5, 0.95)
    layer = cv2.GaussianBlur(layer, (0, 0), sigma) * opacity
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None] * opacity
    return img * (1 - alpha) + layer
