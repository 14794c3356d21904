"""Control renders (normal-coloured RGB, depth, mask, Canny) with one reused pyrender context.

Frames: vertices arrive in our OpenCV camera frame (x right, y down, z forward). pyrender's
cameras look down −z with y up (OpenGL), so the camera *pose* is the 180° turn about x,
``diag(1, −1, −1)``; the meshes stay in the OpenCV frame. With that pose:

- ``perspective`` → ``IntrinsicsCamera(f, f, R/2, R/2)``: pyrender's projection maps a point to
  window pixel ``u = f·X/Z + cx``, ``v = f·Y/Z + cy`` (rows from the top after pyrender's flip), the
  exact formula of ``sampling.camera_model.project`` with pixel centres at integer + 0.5.
- ``weak`` → ``OrthographicCamera(xmag = ymag = 1/s)`` placed at ``(−tx/s, −ty/s, z0)``: NDC is then
  ``s·X + tx`` (x) and ``−(s·Y + ty)`` (y up), i.e. ``project``'s ``u = (s·X + tx + 1)·R/2``.

pyrender linearises depth with the perspective formula even for orthographic cameras; for those
we undo it (``d = n + f − n·f/D``) so the depth map is always the metric camera-frame Z.

The mesh is Loop-subdivided ``subdivisions`` times with a sparse matrix cached per topology
(see ``subdivision``), smooth (area-weighted) vertex normals are computed in the camera frame
and written as vertex colours, and the scene is drawn unlit (``RenderFlags.FLAT``) in one pass,
4× multisampled as GenZoo's pyrender renders are; the mask comes from the sample coverage (see
``coverage_mask_and_depth``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from genzoo_assets.core.errors import InputError

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pyrender  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from genzoo_assets.core.render.egl_device import leased_egl_device  # noqa: E402
from genzoo_assets.core.render.subdivision import LoopSubdivision, topology_key  # noqa: E402
from genzoo_assets.core.sampling.camera_model import Camera  # noqa: E402

# OpenCV camera frame → OpenGL camera frame (and back: it is its own inverse).
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
CANNY_LOW, CANNY_HIGH = 100, 200


@dataclass(frozen=True)
class ControlMaps:
    """One sample's control images, all ``resolution`` × ``resolution``."""

    rgb: np.ndarray  # (R, R, 3) uint8 normal colours, background black
    depth: np.ndarray  # (R, R) float32 metric camera-frame Z, 0 = background
    depth_u8: (
        np.ndarray
    )  # (R, R) uint8, inverted min–max over the body: nearest 255, farthest 1, background 0
    mask: np.ndarray  # (R, R) bool silhouette
    canny: np.ndarray  # (R, R) uint8 cv2.Canny(rgb, 100, 200)


def normal_colours(normals_cv: np.ndarray) -> np.ndarray:
    """Camera-space unit normals (OpenCV frame) → RGB in [0, 1].

    The usual normal-map convention (as in GenZoo's normal renders): the normal in the OpenGL camera
    frame (x right, y up, z towards the viewer) mapped by ``(n + 1) / 2``; a surface facing the
    camera is (0.5, 0.5, 1), lilac-blue.
    """
    n_gl = normals_cv * np.array([1.0, -1.0, -1.0])
    return (n_gl + 1.0) * 0.5


def depth_to_uint8(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverted min–max depth over the foreground (near bright), background 0."""
    out = np.zeros(depth.shape, dtype=np.uint8)
    if not mask.any():
        return out
    d = depth[mask].astype(np.float64)
    lo, hi = d.min(), d.max()
    scaled = np.ones_like(d) if hi - lo <= 0 else (hi - d) / (hi - lo)
    out[mask] = np.rint(1.0 + 254.0 * scaled).astype(np.uint8)
    return out


_FLAGS = (
    pyrender.RenderFlags.FLAT | pyrender.RenderFlags.RGBA | pyrender.RenderFlags.SKIP_CULL_FACES
)


def coverage_mask_and_depth(alpha: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Silhouette from multisample coverage, and depth made consistent with it.

    pyrender draws into a 4× multisample buffer: the resolved alpha is the covered fraction of a
    pixel's four samples (a pattern symmetric about the pixel centre), while the depth it blits is
    sample 0's, which is not at the centre (llvmpipe: (0.375, 0.125) px, y up). A mask taken from
    that depth sits up to 0.4 px off ``project()``; "at least half the samples covered" is centred.
    Depth keeps the sample-0 values (sub-pixel off, harmless for a smooth depth map): mask pixels
    whose sample 0 missed take the farthest depth of their 3×3 neighbours; if none has one (a
    sliver thinner than the sample spacing) the pixel leaves the mask. Background depth is 0.
    """
    mask = alpha >= 128
    missing = mask & (depth <= 0)
    if missing.any():
        grown = cv2.dilate(depth, np.ones((3, 3), np.uint8))
        depth = np.where(missing, grown, depth)
        mask &= depth > 0
    return mask, np.where(mask, depth, 0.0).astype(np.float32)


class _Topology:
    """Per face-array cache: the subdivision matrix and the face→vertex incidence for normals."""

    def __init__(self, faces: np.ndarray, num_vertices: int, subdivisions: int):
        self.subdivision = LoopSubdivision.build(faces, subdivisions, num_vertices)
        f = self.subdivision.faces
        n_v = self.subdivision.matrix.shape[0]
        rows = f.reshape(-1)
        cols = np.repeat(np.arange(len(f)), 3)
        self.incidence = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_v, len(f))
        )
        self.faces = f.astype(np.uint32)

    def vertex_normals(self, vertices: np.ndarray) -> np.ndarray:
        tri = vertices.astype(np.float32)[self.subdivision.faces]
        face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 × area
        n = self.incidence @ face_n
        return n / np.clip(np.linalg.norm(n, axis=1, keepdims=True), 1e-12, None)


def _check_inputs(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise ValueError(f"vertices must be a non-empty (V, 3) array, got shape {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError("vertices contain NaN or infinite values")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an integer (F, 3) array, got {faces.dtype} {faces.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"faces index vertices outside 0..{len(vertices) - 1}")
    return vertices, faces


def pyrender_camera(
    camera: Camera, bounds: np.ndarray
) -> tuple[pyrender.Camera, np.ndarray, float]:
    """(pyrender camera, its 4×4 pose in the OpenCV frame, z offset of the camera) for ``camera``.

    ``bounds`` is the mesh's (2, 3) [min, max] corner pair. Near/far planes hug the mesh depth
    range (tight planes keep the 24-bit depth buffer precise).
    """
    zmin, zmax = float(bounds[0, 2]), float(bounds[1, 2])
    extent = float((bounds[1] - bounds[0]).max())
    pad = 0.05 * extent + 1e-3
    pose = CV_TO_GL.copy()
    if camera.model == "perspective":
        if zmin <= 0:
            raise ValueError(
                f"perspective render: mesh reaches z = {zmin:.4g} <= 0 (behind the camera)"
            )
        near = max(zmin - pad, 0.5 * zmin)
        c = camera.resolution / 2.0
        f = camera.focal_px
        return (
            pyrender.IntrinsicsCamera(fx=f, fy=f, cx=c, cy=c, znear=near, zfar=zmax + pad),
            pose,
            0.0,
        )
    z0 = zmin - 2.0 * pad
    mag = 1.0 / camera.scale
    pose[:3, 3] = [-camera.tx * mag, -camera.ty * mag, z0]
    cam = pyrender.OrthographicCamera(xmag=mag, ymag=mag, znear=pad, zfar=zmax - z0 + pad)
    return cam, pose, z0


class _OffscreenOn(pyrender.OffscreenRenderer):
    """pyrender's offscreen renderer on EGL device ``egl_index`` (the leased GPU's; see
    ``egl_device``) instead of ``EGL_DEVICE_ID``; ``None``: pyrender's own choice."""

    def __init__(self, width: int, height: int, egl_index: int | None):
        self._egl_index = egl_index
        super().__init__(width, height)

    def _create(self):
        if self._egl_index is None or os.environ.get("PYOPENGL_PLATFORM") != "egl":
            return super()._create()
        from pyrender.platforms import egl

        device = egl.get_device_by_index(self._egl_index)
        self._platform = egl.EGLPlatform(self.viewport_width, self.viewport_height, device=device)
        self._platform.init_context()
        self._platform.make_current()
        self._renderer = pyrender.Renderer(self.viewport_width, self.viewport_height)


def offscreen_renderer(width: int, height: int) -> pyrender.OffscreenRenderer:
    """An offscreen renderer on the leased GPU's EGL device (pyrender's default without a lease)."""
    return _OffscreenOn(width, height, leased_egl_device())


def _release(gl: pyrender.OffscreenRenderer) -> None:
    """Free one renderer's GL objects and context without ``eglTerminate``.

    pyrender's ``delete()`` (also run by its ``__del__``) terminates the process-wide EGL display,
    which kills every other live context (a second ControlRenderer, another stage's renderer);
    destroying only our context keeps them working.
    """
    platform = getattr(gl, "_platform", None)
    if type(platform).__name__ != "EGLPlatform":
        gl.delete()
        return
    from OpenGL.EGL import eglDestroyContext

    platform.make_current()
    gl._renderer.delete()
    platform.make_uncurrent()
    eglDestroyContext(platform._egl_display, platform._egl_context)
    # Detach, so neither object's __del__ reaches pyrender's delete_context (and eglTerminate).
    platform._egl_context = platform._egl_display = None
    gl._renderer = gl._platform = None


class ControlRenderer:
    """One offscreen GL context reused for every sample (creating one costs far more than a render).

    Images come out at each camera's ``resolution`` (the context is resized when it changes);
    ``resolution`` here is the size the context is first made at.
    """

    def __init__(self, resolution: int = 1024, subdivisions: int = 2):
        if resolution <= 0:
            raise InputError(f"render resolution must be positive, got {resolution}")
        if subdivisions < 0:
            raise InputError(f"subdivisions must be >= 0, got {subdivisions}")
        self.resolution = int(resolution)
        self.subdivisions = int(subdivisions)
        self._renderer: pyrender.OffscreenRenderer | None = None
        self._topologies: dict[str, _Topology] = {}

    def _gl(self, resolution: int) -> pyrender.OffscreenRenderer:
        if self._renderer is None:
            self._renderer = offscreen_renderer(self.resolution, self.resolution)
        if self._renderer.viewport_width != resolution:
            self._renderer.viewport_width = resolution
            self._renderer.viewport_height = resolution
        return self._renderer

    def topology(self, faces: np.ndarray, num_vertices: int) -> _Topology:
        key = f"{topology_key(faces, self.subdivisions)}:{num_vertices}"
        topo = self._topologies.get(key)
        if topo is None:
            topo = self._topologies[key] = _Topology(
                np.asarray(faces), num_vertices, self.subdivisions
            )
        return topo

    def subdivide(self, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The subdivided mesh (vertices, faces) exactly as it is rendered."""
        vertices, faces = _check_inputs(vertices, faces)
        topo = self.topology(faces, len(vertices))
        return topo.subdivision(vertices), topo.subdivision.faces

    def render(self, vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> ControlMaps:
        """Control maps of a camera-frame mesh (the base topology; it is subdivided here)."""
        if not isinstance(camera, Camera):
            raise TypeError(
                f"camera must be a sampling.camera_model.Camera, got {type(camera).__name__}"
            )
        vertices, faces = _check_inputs(vertices, faces)
        topo = self.topology(faces, len(vertices))
        return self._draw(topo.subdivision(vertices), topo, camera)

    def render_subdivided(
        self, vertices: np.ndarray, faces: np.ndarray, camera: Camera
    ) -> ControlMaps:
        """Render a mesh as given (already subdivided elsewhere, e.g. by trimesh per sample)."""
        vertices, faces = _check_inputs(vertices, faces)
        return self._draw(vertices, _FlatTopology(faces, len(vertices)), camera)

    def _draw(self, verts: np.ndarray, topo: _Topology, camera: Camera) -> ControlMaps:
        colours = np.ones((len(verts), 4), dtype=np.float32)
        colours[:, :3] = normal_colours(topo.vertex_normals(verts))
        prim = pyrender.Primitive(
            positions=verts.astype(np.float32), indices=topo.faces, color_0=colours, mode=4
        )
        bounds = np.stack([verts.min(axis=0), verts.max(axis=0)])
        cam, pose, z0 = pyrender_camera(camera, bounds)
        scene = pyrender.Scene(bg_color=np.zeros(4), ambient_light=np.ones(3))
        scene.add(pyrender.Mesh([prim]))
        scene.add(cam, pose=pose)
        colour, depth = self._gl(camera.resolution).render(scene, flags=_FLAGS)
        if camera.model == "weak":
            hit = depth > 0
            n, f = cam.znear, cam.zfar
            depth = depth.astype(np.float64)
            depth[hit] = n + f - n * f / depth[hit] + z0
        mask, depth = coverage_mask_and_depth(colour[..., 3], depth.astype(np.float32))
        rgb = np.ascontiguousarray(colour[..., :3], dtype=np.uint8)
        return ControlMaps(
            rgb=rgb,
            depth=depth,
            depth_u8=depth_to_uint8(depth, mask),
            mask=mask,
            canny=cv2.Canny(rgb, CANNY_LOW, CANNY_HIGH),
        )

    def close(self) -> None:
        if self._renderer is not None:
            _release(self._renderer)
            self._renderer = None

    def __enter__(self) -> ControlRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _FlatTopology(_Topology):
    """Normals/incidence for a mesh given already subdivided (the per-sample baseline path)."""

    def __init__(self, faces: np.ndarray, num_vertices: int):
        self.subdivision = LoopSubdivision.build(faces, 0, num_vertices)
        rows = faces.reshape(-1)
        cols = np.repeat(np.arange(len(faces)), 3)
        self.incidence = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(num_vertices, len(faces))
        )
        self.faces = faces.astype(np.uint32)
