"""Contact sheet of control renders: the preview image shown in the Dagster UI."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from genzoo_assets.core import layout
from genzoo_assets.core.errors import MissingInputError
from genzoo_assets.core.paths import write_bytes_atomic

PANELS = ("rgb", "depth", "canny", "keypoints")


def _load(data_dir: Path, rel: str, mode: str) -> Image.Image:
    path = data_dir / rel
    if not path.is_file():
        raise MissingInputError(f"contact sheet: render file {path} is missing")
    return Image.open(path).convert(mode)


def _edges_panel(canny: Image.Image, tile: int) -> Image.Image:
    """Downscale one-pixel Canny edges without losing them: any edge in a cell lights the cell."""
    small = np.asarray(canny.resize((tile, tile), Image.BOX)) > 0
    return Image.fromarray(small.astype(np.uint8) * 255).convert("RGB")


def _keypoint_panel(rgb: Image.Image, row: pd.Series, tile: int) -> Image.Image:
    """RGB with keypoints: visible filled, occluded hollow (coordinates scaled to the tile)."""
    img = rgb.resize((tile, tile), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    scale = tile / float(row["render_resolution"])
    kp = np.asarray(row["keypoints_2d"], dtype=np.float64).reshape(-1, 2) * scale
    vis = np.asarray(row["keypoints_vis"], dtype=bool)
    r = max(3, tile // 64)
    for (x, y), v in zip(kp, vis):
        box = (x - r, y - r, x + r, y + r)
        if v:
            draw.ellipse(box, fill=(255, 60, 40), outline=(255, 255, 255))
        else:
            draw.ellipse(box, outline=(255, 220, 0), width=max(1, r // 2))
    return img


def contact_sheet(
    rows: pd.DataFrame, data_dir: str | Path, max_samples: int = 4, tile: int = 256
) -> Image.Image:
    """One row per sample (the first ``max_samples``): RGB, depth, Canny, RGB with keypoints."""
    if len(rows) == 0:
        raise ValueError("contact sheet: no control_renders rows to show")
    data_dir = Path(data_dir)
    shown = rows.iloc[:max_samples]
    sheet = Image.new("RGB", (tile * len(PANELS), tile * len(shown)), (40, 40, 40))
    for i, (_, row) in enumerate(shown.iterrows()):
        rgb = _load(data_dir, row["rgb_path"], "RGB")
        panels = [
            rgb.resize((tile, tile), Image.BILINEAR),
            _load(data_dir, row["depth_path"], "L")
            .resize((tile, tile), Image.BILINEAR)
            .convert("RGB"),
            _edges_panel(_load(data_dir, row["canny_path"], "L"), tile),
            _keypoint_panel(rgb, row, tile),
        ]
        for j, panel in enumerate(panels):
            sheet.paste(panel, (j * tile, i * tile))
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_contact_sheet(
    rows: pd.DataFrame, data_dir: str | Path, name: str | None = None, max_samples: int = 4
) -> Path:
    """Write ``previews/control_renders/<name>.png``; ``name`` defaults to ``<species>__<shard>`` of the rows."""
    if len(rows) == 0:
        raise ValueError("contact sheet: no control_renders rows to show")
    if name is None:
        name = f"{rows['species'].iloc[0]}__{rows['shard'].iloc[0]}"
    path = layout.previews_dir(data_dir, "control_renders") / f"{name}.png"
    return write_bytes_atomic(path, png_bytes(contact_sheet(rows, data_dir, max_samples)))
