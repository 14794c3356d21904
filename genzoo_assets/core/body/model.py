"""The SMAL-family body model: shape blend shapes + pose correctives + LBS (``smplx.lbs.lbs``).

smplx's ``SMPL`` class assumes SMPL's 6890 vertices for its extra joints, so the model calls
``smplx.lbs.lbs`` directly with its own buffers (the layout smplx uses: posedirs ``(P, V*3)``);
models without pose correctives take the cache-friendly rigid path in :mod:`.skinning`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
from smplx.lbs import blend_shapes, lbs

from genzoo_assets.core.errors import InputError

from .rotations import axis_angle_to_matrix
from .skeleton import KEYPOINT_NAMES, NUM_JOINTS, NUM_KEYPOINTS, SMAL_JOINT_NAMES
from .skinning import rigid_lbs, sparse_skinning


class BodyModelError(InputError):
    """A body model file or array set cannot be used; the message names the source and the problem."""


@dataclass
class BodyOutput:
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, J, 3)
    keypoints: torch.Tensor  # (B, 26, 3)


def _finite(source: str, key: str, a: np.ndarray) -> np.ndarray:
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BodyModelError(
            f"{source}: '{key}' is not a numeric array ({type(a).__name__}: {exc})"
        ) from exc
    if not np.all(np.isfinite(a)):
        raise BodyModelError(f"{source}: '{key}' holds non-finite values (NaN or inf)")
    return a


def validate_arrays(
    source: str,
    v_template,
    shapedirs,
    posedirs,
    J_regressor,
    weights,
    parents,
    faces,
) -> dict[str, np.ndarray]:
    """Check shapes, ranges and finiteness; return float64/int64 arrays. Raises :class:`BodyModelError`."""
    v = _finite(source, "v_template", v_template)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 4:
        raise BodyModelError(f"{source}: 'v_template' must be (V, 3), got shape {v.shape}")
    nv = v.shape[0]
    sd = _finite(source, "shapedirs", shapedirs)
    if sd.ndim == 2 and sd.shape[0] == nv * 3:
        sd = sd.reshape(nv, 3, -1)
    if sd.ndim != 3 or sd.shape[:2] != (nv, 3):
        why = (
            " (its vertex count differs from the template's)"
            if sd.ndim == 3 and sd.shape[0] != nv
            else ""
        )
        raise BodyModelError(
            f"{source}: 'shapedirs' must be (V={nv}, 3, num_betas), got shape {sd.shape}{why}"
        )
    par = np.asarray(parents).astype(np.int64).ravel()
    nj = par.shape[0]
    if nj != NUM_JOINTS:
        raise BodyModelError(
            f"{source}: the kinematic tree has {nj} joints, a SMAL-family model needs {NUM_JOINTS}"
        )
    if par[0] != -1 or np.any(par[1:] < 0) or np.any(par[1:] >= np.arange(1, nj)):
        raise BodyModelError(
            f"{source}: 'kintree_table' parents {par.tolist()} are not a tree rooted at joint 0 "
            f"with every parent before its child"
        )
    num_pose = 9 * (nj - 1)
    pd = _finite(source, "posedirs", posedirs)
    if pd.ndim == 3 and pd.shape[:2] == (nv, 3) and pd.shape[2] == num_pose:
        pd = pd.reshape(nv * 3, num_pose).T
    elif not (pd.ndim == 2 and pd.shape == (num_pose, nv * 3)):
        raise BodyModelError(
            f"{source}: 'posedirs' must be (V={nv}, 3, {num_pose}), got shape {pd.shape}"
        )
    jr = J_regressor.toarray() if scipy.sparse.issparse(J_regressor) else J_regressor
    jr = _finite(source, "J_regressor", jr)
    if jr.shape != (nj, nv):
        raise BodyModelError(
            f"{source}: 'J_regressor' must be (J={nj}, V={nv}), got shape {jr.shape}"
        )
    w = _finite(source, "weights", weights)
    if w.shape != (nv, nj):
        raise BodyModelError(
            f"{source}: skinning 'weights' must be (V={nv}, J={nj}), got shape {w.shape}"
        )
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise BodyModelError(
            f"{source}: faces 'f' must be an (F, 3) integer array, got {f.dtype} {f.shape}"
        )
    f = f.astype(np.int64)
    if f.size and (f.min() < 0 or f.max() >= nv):
        raise BodyModelError(
            f"{source}: faces 'f' index vertices {f.min()}..{f.max()}, outside 0..{nv - 1}"
        )
    return {
        "v_template": v,
        "shapedirs": sd,
        "posedirs": pd,
        "J_regressor": jr,
        "weights": w,
        "parents": par,
        "faces": f,
    }


def keypoint_gather(source: str, groups: Sequence[Sequence[int]], num_vertices: int):
    """(26, K) vertex ids and weights (1/len(group), 0 for padding): keypoint = weighted sum."""
    if len(groups) != NUM_KEYPOINTS:
        raise BodyModelError(
            f"{source}: {len(groups)} keypoint groups given, {NUM_KEYPOINTS} needed"
        )
    width = max(len(g) for g in groups) or 1
    index = np.zeros((NUM_KEYPOINTS, width), dtype=np.int64)
    weight = np.zeros((NUM_KEYPOINTS, width))
    for k, group in enumerate(groups):
        idx = np.asarray(group, dtype=np.int64).ravel()
        if idx.size == 0 or idx.min() < 0 or idx.max() >= num_vertices:
            raise BodyModelError(
                f"{source}: keypoint group '{KEYPOINT_NAMES[k]}' is empty or indexes "
                f"vertices outside 0..{num_vertices - 1}"
            )
        index[k, : idx.size] = idx
        weight[k, : idx.size] = 1.0 / idx.size
    return index, weight


class BodyModel(torch.nn.Module):
    """Batched SMAL-family model. Device and dtype follow the module (``.to(...)``).

    ``keypoint_set`` names where ``keypoint_groups`` come from (``"animer"``: AniMer's vertex lists
    on SMAL topology, see :mod:`.animer_keypoints`; ``"derived"``: from the model's own geometry);
    provenance records it with every keypoint annotation.
    """

    def __init__(
        self,
        v_template,
        shapedirs,
        posedirs,
        J_regressor,
        weights,
        parents,
        faces,
        keypoint_groups: Sequence[Sequence[int]],
        joint_names: Sequence[str] | None = None,
        canonical_rotation=None,
        source: str = "<arrays>",
        sha256: str | None = None,
        dtype: torch.dtype = torch.float32,
        keypoint_set: str = "derived",
    ):
        super().__init__()
        a = validate_arrays(
            source, v_template, shapedirs, posedirs, J_regressor, weights, parents, faces
        )
        names = tuple(joint_names) if joint_names is not None else SMAL_JOINT_NAMES
        if len(names) != NUM_JOINTS:
            raise BodyModelError(f"{source}: {len(names)} joint names for {NUM_JOINTS} joints")
        c = (
            np.eye(3)
            if canonical_rotation is None
            else np.asarray(canonical_rotation, dtype=np.float64)
        )
        if (
            c.shape != (3, 3)
            or not np.allclose(c @ c.T, np.eye(3), atol=1e-6)
            or np.linalg.det(c) < 0
        ):
            raise BodyModelError(f"{source}: canonical_rotation must be a 3x3 rotation matrix")
        nv = a["v_template"].shape[0]
        self.source = str(source)
        self.sha256 = sha256
        self.joint_names: tuple[str, ...] = names
        self.keypoint_names: tuple[str, ...] = KEYPOINT_NAMES
        self.keypoint_groups: list[list[int]] = [
            [int(i) for i in np.asarray(g).ravel()] for g in keypoint_groups
        ]
        self.keypoint_set = str(keypoint_set)
        self.canonical_rotation: np.ndarray = c
        self.parents: np.ndarray = a["parents"]
        self.faces: np.ndarray = a["faces"]
        kp_index, kp_weight = keypoint_gather(self.source, self.keypoint_groups, nv)
        t = lambda x: torch.as_tensor(x, dtype=dtype)  # noqa: E731
        self.register_buffer("v_template", t(a["v_template"]))
        self.register_buffer("shapedirs", t(a["shapedirs"]))
        self.register_buffer("posedirs", t(a["posedirs"]))
        self.register_buffer("J_regressor", t(a["J_regressor"]))
        self.register_buffer("lbs_weights", t(a["weights"]))
        self.register_buffer("joint_template", t(a["J_regressor"] @ a["v_template"]))
        self.register_buffer(
            "joint_shapedirs", t(np.einsum("jv,vcb->jcb", a["J_regressor"], a["shapedirs"]))
        )
        skin_index, skin_weight = sparse_skinning(self.lbs_weights)
        self.register_buffer(
            "skin_index", skin_index, persistent=False
        )  # derived: kept out of state_dict
        self.register_buffer("skin_weight", skin_weight, persistent=False)
        self.register_buffer("keypoint_index", torch.as_tensor(kp_index))
        self.register_buffer("keypoint_weight", t(kp_weight))
        self.register_buffer("parents_t", torch.as_tensor(self.parents, dtype=torch.long))
        self.pose_correctives = bool(np.any(a["posedirs"] != 0))

    num_joints = property(lambda self: int(self.parents.shape[0]))
    num_vertices = property(lambda self: int(self.v_template.shape[0]))
    num_betas = property(lambda self: int(self.shapedirs.shape[-1]))
    num_faces = property(lambda self: int(self.faces.shape[0]))
    dtype = property(lambda self: self.v_template.dtype)
    device = property(lambda self: self.v_template.device)

    def _betas(self, betas, batch: int | None = None) -> torch.Tensor:
        b = torch.as_tensor(betas, dtype=self.dtype, device=self.device)
        if b.ndim == 1:
            b = b[None]
        if b.ndim != 2:
            raise ValueError(f"betas must be (B, num_betas), got shape {tuple(b.shape)}")
        if b.shape[1] > self.num_betas:
            raise ValueError(
                f"betas has {b.shape[1]} columns but the model ({self.source}) has only "
                f"{self.num_betas} shape blend shapes"
            )
        if b.shape[1] < self.num_betas:
            b = torch.nn.functional.pad(b, (0, self.num_betas - b.shape[1]))
        if batch is not None and b.shape[0] != batch:
            if b.shape[0] != 1:
                raise ValueError(f"betas batch {b.shape[0]} does not match pose batch {batch}")
            b = b.expand(batch, -1)
        return b

    def _rotations(self, x, count: int, name: str) -> torch.Tensor:
        """Axis-angle or matrices -> (B, count, 3, 3)."""
        r = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        bsz = r.shape[0] if r.ndim else 0
        if r.ndim == 2 and r.shape[1] == 3 * count:
            return axis_angle_to_matrix(r.reshape(bsz, count, 3))
        if r.ndim == 3 and r.shape[1:] == (count, 3):
            return axis_angle_to_matrix(r)
        if r.ndim == 3 and r.shape[1:] == (3, 3) and count == 1:
            return r[:, None]
        if r.ndim == 4 and r.shape[1:] == (count, 3, 3):
            return r
        raise ValueError(
            f"{name} must be axis-angle (B,{count * 3}) / (B,{count},3) or matrices "
            f"(B,{count},3,3){' / (B,3,3)' if count == 1 else ''}; got shape {tuple(r.shape)}"
        )

    def tpose_vertices(self, betas) -> torch.Tensor:
        """Shaped template at zero pose, (B, V, 3): what the regressor's betas loss compares.

        In the model's dtype with autocast off, as :meth:`forward`."""
        with torch.autocast(self.device.type, enabled=False):
            return self.v_template + blend_shapes(self._betas(betas), self.shapedirs)

    def forward(self, betas, global_orient, body_pose, transl=None) -> BodyOutput:
        """Posed vertices (B, V, 3), joints (B, J, 3) and keypoints (B, 26, 3).

        Always in the model's dtype with autocast off: under bf16 autocast (the regressor's mixed
        precision on a GPU) the blend-shape and skinning products would run in bf16 and move
        keypoints by ~9 mm on a 1.4 m body, noise the size of what the 2D and betas losses measure.
        """
        with torch.autocast(self.device.type, enabled=False):
            return self._forward(betas, global_orient, body_pose, transl)

    def _forward(self, betas, global_orient, body_pose, transl) -> BodyOutput:
        go = self._rotations(global_orient, 1, "global_orient")
        bp = self._rotations(body_pose, self.num_joints - 1, "body_pose")
        if go.shape[0] != bp.shape[0]:
            raise ValueError(f"global_orient batch {go.shape[0]} != body_pose batch {bp.shape[0]}")
        batch = go.shape[0]
        full = torch.cat([go, bp], dim=1).contiguous()
        b = self._betas(betas, batch)
        if self.pose_correctives:
            verts, joints = lbs(
                b,
                full,
                self.v_template,
                self.shapedirs,
                self.posedirs,
                self.J_regressor,
                self.parents_t,
                self.lbs_weights,
                pose2rot=False,
            )
        else:
            verts, joints = rigid_lbs(
                b,
                full,
                self.v_template,
                self.shapedirs,
                self.joint_template,
                self.joint_shapedirs,
                self.parents_t,
                self.skin_index,
                self.skin_weight,
            )
        # Gathered as (26, width, 3, B): rows stay contiguous when vertices are a view of (V, 3, B).
        by_vertex = verts.permute(1, 2, 0)[self.keypoint_index]
        kps = (by_vertex * self.keypoint_weight[..., None, None]).sum(1).permute(2, 0, 1)
        if transl is not None:
            tr = torch.as_tensor(transl, dtype=self.dtype, device=self.device).reshape(-1, 1, 3)
            verts, joints, kps = verts + tr, joints + tr, kps + tr
        return BodyOutput(vertices=verts, joints=joints, keypoints=kps)

    def extra_repr(self) -> str:
        return (
            f"source={self.source!r}, vertices={self.num_vertices}, faces={self.num_faces}, "
            f"joints={self.num_joints}, betas={self.num_betas}"
        )
