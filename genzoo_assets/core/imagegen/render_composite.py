"""The default, offline image backend: a lit, coat-coloured render of the posed body over a
procedural background — the classic synthetic-data recipe that predates diffusion.

Per sample (everything drawn from ``np.random.default_rng(request.seed)``):

1. coat: palette by species/breed/family/order keywords, pattern evaluated on the unposed body in
   its canonical frame (``coats``), so it moves with the pose;
2. albedo: the posed, Loop-subdivided mesh drawn unlit with those vertex colours (pyrender, EGL),
   the same subdivision and camera conversion as the control renders (``core.render``);
3. shading: deferred, from the control normal map — ambient sky light plus one directional light
   with random direction, intensity and colour temperature, a little specular, and a cavity term
   from the depth map; so the lit image lines up pixel-exactly with the controls;
4. composite over ``backgrounds.background`` with a soft contact shadow, alpha = the control mask;
5. photometric augmentation only (colour jitter, blur, noise, JPEG), so mask and keypoints stay
   ground truth.

Without a mesh in the request, step 2 falls back to an image-space pattern inside the mask.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from genzoo_assets.core.imagegen import coats
from genzoo_assets.core.imagegen.backgrounds import background
from genzoo_assets.core.imagegen.base import GenerationRequest
from genzoo_assets.core.provenance import file_sha256


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Colour of a black body (Tanner Helland's fit), normalised so the brightest channel is 1."""
    t = kelvin / 100.0
    r = 1.0 if t <= 66 else 1.292936 * (t - 60) ** -0.1332047
    g = 0.39008157 * np.log(t) - 0.63184144 if t <= 66 else 1.1298909 * (t - 60) ** -0.0755148
    b = 1.0 if t >= 66 else (0.0 if t <= 19 else 0.54320678 * np.log(t - 10) - 1.19625409)
    rgb = np.clip([r, g, b], 0, 1)
    return rgb / rgb.max()


class RenderCompositeGenerator:
    """Coat-coloured, lit render of the body composited over a procedural scene (no weights)."""

    name = "render_composite"

    def __init__(self, subdivisions: int = 2, augment: bool = True):
        from genzoo_assets.core.render.renderer import ControlRenderer

        self.subdivisions = int(subdivisions)
        self.augment = bool(augment)
        self._subdivider = ControlRenderer(
            subdivisions=self.subdivisions
        )  # its subdivision cache only
        self._gl = None

    @property
    def model_hashes(self) -> dict[str, str]:
        path = coats.resources.files("genzoo_assets.core.imagegen").joinpath(
            "data/coat_palettes.json"
        )
        return {"coat_palettes": f"sha256:{file_sha256(str(path))}"}

    @property
    def params(self) -> dict:
        return {
            "steps": 0,
            "guidance": 0.0,
            "cond_scales": [],
            "subdivisions": self.subdivisions,
            "augment": self.augment,
        }

    def generate(self, batch: list[GenerationRequest]) -> list[Image.Image]:
        return [self.generate_one(r) for r in batch]

    def generate_one(self, req: GenerationRequest) -> Image.Image:
        rng = np.random.default_rng(int(req.seed))
        h, w = req.size
        mask = np.asarray(req.mask, bool)
        coat = coats.choose_coat(rng, req.species, req.species_info, req.prompt)
        if req.vertices is not None and req.faces is not None and req.camera is not None:
            albedo = self._mesh_albedo(req, coat, rng)
        else:
            albedo = self._image_albedo(req, coat, rng)
        bg = background(rng, h, w)
        fg, light_dir = self._shade(req, albedo, rng)
        bg = self._contact_shadow(bg, mask, light_dir, rng)
        # Anti-aliasing only inward: the shaded layer is undefined (black) outside the mask.
        alpha = (cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.6) * mask)[..., None]
        img = bg * (1 - alpha) + fg * alpha
        if self.augment:
            img = photometric_augment(img, rng)
        return Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))

    def _mesh_albedo(
        self, req: GenerationRequest, coat: coats.Coat, rng: np.random.Generator
    ) -> np.ndarray:
        from genzoo_assets.core.render.renderer import (
            offscreen_renderer,
            pyrender,
            pyrender_camera,
        )  # the renderer picks the GL platform

        h, w = req.size
        if req.camera.resolution != h or h != w:
            raise ValueError(
                f"request {req.sample_id}: controls are {h}x{w} but the camera renders {req.camera.resolution}²"
            )
        faces = np.asarray(req.faces, np.int64)
        posed, sub_faces = self._subdivider.subdivide(np.asarray(req.vertices, np.float64), faces)
        if req.canonical_vertices is not None:
            canon, _ = self._subdivider.subdivide(
                np.asarray(req.canonical_vertices, np.float64), faces
            )
        else:  # no rest pose given: the camera frame with y up stands in (patterns then follow the view)
            canon = posed * np.array([1.0, -1.0, 1.0])
        points = coats.normalise_body(canon)
        normal_up = self._subdivider.topology(faces, len(req.vertices)).vertex_normals(canon)[:, 1]
        up = 0.6 * normal_up + 0.8 * points[:, 1] / max(float(np.ptp(points[:, 1])), 1e-6)
        colours = np.ones((len(posed), 4), np.float32)
        colours[:, :3] = coats.coat_albedo(coat, points, up, rng)
        prim = pyrender.Primitive(
            positions=posed.astype(np.float32), indices=sub_faces, color_0=colours, mode=4
        )
        cam, pose, _ = pyrender_camera(req.camera, np.stack([posed.min(0), posed.max(0)]))
        scene = pyrender.Scene(bg_color=np.zeros(4), ambient_light=np.ones(3))
        scene.add(pyrender.Mesh([prim]))
        scene.add(cam, pose=pose)
        if self._gl is None:
            self._gl = offscreen_renderer(w, h)  # on the leased GPU's EGL device
        self._gl.viewport_width, self._gl.viewport_height = w, h
        flags = pyrender.RenderFlags.FLAT | pyrender.RenderFlags.SKIP_CULL_FACES
        colour, depth = self._gl.render(scene, flags=flags)
        albedo = np.ascontiguousarray(colour[..., :3])
        missing = (np.asarray(req.mask, bool) & (depth <= 0)).astype(np.uint8)
        if (
            missing.any()
        ):  # silhouette pixels the albedo pass missed (subdivision/raster differences)
            albedo = cv2.inpaint(albedo, missing, 3, cv2.INPAINT_TELEA)
        return albedo.astype(np.float32) / 255.0

    def _image_albedo(
        self, req: GenerationRequest, coat: coats.Coat, rng: np.random.Generator
    ) -> np.ndarray:
        mask = np.asarray(req.mask, bool)
        ys, xs = np.nonzero(mask)
        albedo = np.zeros((*req.size, 3), np.float32)
        if len(xs) == 0:
            return albedo
        pts = np.stack([xs, -ys, np.zeros_like(xs)], 1).astype(np.float64)
        points = coats.normalise_body(pts)
        n_up = np.asarray(req.normal_rgb, np.float64)[ys, xs, 1] / 127.5 - 1.0  # GL normal y = up
        up = 0.6 * n_up + 0.8 * points[:, 1] / max(float(np.ptp(points[:, 1])), 1e-6)
        albedo[ys, xs] = coats.coat_albedo(coat, points, up, rng)
        return albedo

    def _shade(self, req: GenerationRequest, albedo: np.ndarray, rng: np.random.Generator):
        n = (
            np.asarray(req.normal_rgb, np.float32) / 127.5 - 1.0
        )  # GL camera frame: x right, y up, z to viewer
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
        az, el = rng.uniform(-np.pi * 0.8, np.pi * 0.8), rng.uniform(0.15, 1.2)
        light = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], np.float32)
        light_rgb = kelvin_to_rgb(rng.uniform(3200, 8500)).astype(np.float32)
        sky_rgb = kelvin_to_rgb(rng.uniform(6500, 12000)).astype(np.float32)
        intensity, ambient = rng.uniform(0.8, 1.5), rng.uniform(0.25, 0.55)
        lin = albedo.astype(np.float32) ** 2.2
        lambert = np.clip(n @ light, 0, 1)[..., None]
        sky = (0.6 + 0.4 * n[..., 1:2]) * ambient * sky_rgb  # hemisphere light: brighter facing up
        half = light + np.array([0, 0, 1], np.float32)
        half /= np.linalg.norm(half)
        spec = rng.uniform(0.02, 0.12) * np.clip(n @ half, 0, 1)[..., None] ** rng.uniform(8, 30)
        depth = np.asarray(req.depth, np.float32) / 255.0
        cavity = np.clip(cv2.GaussianBlur(depth, (0, 0), 2.0 + 0.01 * req.size[0]) - depth, 0, 0.3)
        occlusion = (1.0 - 1.5 * cavity)[..., None]
        shaded = (lin * (sky + intensity * light_rgb * lambert) + spec * light_rgb) * occlusion
        return np.clip(shaded, 0, 1) ** (1 / 2.2), light

    @staticmethod
    def _contact_shadow(
        bg: np.ndarray, mask: np.ndarray, light: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """A soft shadow cast onto the ground, offset away from the light."""
        h, w = mask.shape
        shift = np.float32([[1, 0, -light[0] * 0.05 * w], [0, 1, 0.02 * h]])
        shadow = cv2.warpAffine(mask.astype(np.float32), shift, (w, h))
        shadow = cv2.GaussianBlur(shadow, (0, 0), 0.015 * w + 0.5) * rng.uniform(0.2, 0.45)
        return bg * (1 - shadow[..., None])

    def close(self) -> None:
        """Free our GL context only (pyrender's ``delete`` would end every EGL context of the process)."""
        if self._gl is not None:
            from genzoo_assets.core.render.renderer import _release

            _release(self._gl)
            self._gl = None
        self._subdivider.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL may already be gone
            pass


def photometric_augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour jitter, blur, sensor noise and JPEG artefacts; geometry untouched (labels stay valid)."""
    img = img.astype(np.float32)
    grey = img.mean(-1, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.7, 1.3)  # saturation
    img = (
        (img - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    )  # contrast, brightness
    img = img * (1 + rng.normal(0, 0.03, 3).astype(np.float32))  # white balance
    img = np.clip(img, 0, 1) ** rng.uniform(0.85, 1.15)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(0.004, 0.025), img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    if rng.random() < 0.7:
        bgr = cv2.cvtColor((img * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
        _, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 96))])
        img = (
            cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)
            / 255.0
        )
    return img
