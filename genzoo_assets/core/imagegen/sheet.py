"""A contact sheet of generated images, each beside its Canny control, for the web UI's preview."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from genzoo_assets.core import layout
from genzoo_assets.core.paths import atomic_path


def _tile(path: Path, size: int, mode: str = "RGB") -> Image.Image:
    return Image.open(path).convert(mode).convert("RGB").resize((size, size))


def image_sheet(
    rows: pd.DataFrame, data_dir: str | Path, max_samples: int = 6, tile: int = 224
) -> Image.Image:
    """Pairs (image | control Canny) with the alignment score; flagged samples framed in red."""
    data_dir = Path(data_dir)
    rows = rows.head(max_samples)
    sheet = Image.new("RGB", (2 * tile, max(1, len(rows)) * (tile + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows.itertuples(index=False)):
        y = i * (tile + 18)
        sheet.paste(_tile(data_dir / row.image_path, tile), (0, y + 18))
        canny = getattr(row, "canny_path", None)
        if canny:
            sheet.paste(_tile(data_dir / canny, tile, "L"), (tile, y + 18))
        colour = "red" if row.flagged else "black"
        draw.text(
            (4, y + 3),
            f"{row.sample_id}  alignment {row.alignment_score:.2f}"
            + ("  FLAGGED" if row.flagged else ""),
            fill=colour,
        )
        if row.flagged:
            draw.rectangle([0, y + 18, tile - 1, y + 17 + tile], outline="red", width=3)
    return sheet


def write_image_sheet(
    rows: pd.DataFrame, data_dir: str | Path, name: str, max_samples: int = 6
) -> Path:
    """Write ``previews/images/<name>.png`` and return its path."""
    path = layout.previews_dir(data_dir, "images") / f"{name}.png"
    with atomic_path(path) as tmp:
        image_sheet(rows, data_dir, max_samples).save(tmp, format="PNG")
    return path
