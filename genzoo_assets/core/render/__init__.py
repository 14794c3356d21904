"""Control renders: normal-coloured RGB, depth, mask and Canny of the posed body, plus 2D annotations."""

from genzoo_assets.core.render.contact_sheet import contact_sheet, write_contact_sheet
from genzoo_assets.core.render.partition import OUTPUT_COLUMNS, camera_from_row, render_partition
from genzoo_assets.core.render.renderer import ControlMaps, ControlRenderer
from genzoo_assets.core.render.subdivision import LoopSubdivision

__all__ = [
    "ControlMaps",
    "ControlRenderer",
    "LoopSubdivision",
    "OUTPUT_COLUMNS",
    "camera_from_row",
    "contact_sheet",
    "render_partition",
    "write_contact_sheet",
]
