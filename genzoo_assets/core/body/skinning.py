"""Rigid linear blend skinning for models without pose correctives, sparse and laid out for caches.

Same maths as ``smplx.lbs.lbs`` with all-zero posedirs, rearranged because the dense form is
bandwidth-bound: a (V, J) weights GEMM writes B x 12 x V floats (200 MB at B=1024 for 4k vertices)
although each vertex of an animal model depends on at most a few joints. Here every vertex gathers
only its own joints' 3x4 transforms (``embedding_bag`` with the weights as per-sample weights), the
sample index is innermost (so each elementwise op runs over long contiguous rows) and vertices are
processed in blocks whose intermediates fit in a CPU's L2 cache. Vertices come back as a (B, V, 3)
view of a (V, 3, B) tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from smplx.lbs import batch_rigid_transform, blend_shapes

CPU_BLOCK_FLOATS = 1 << 17  # per-block transforms (Vb x 12 x B floats): 512 KB, under a 1 MB L2


def sparse_skinning(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, J) skinning weights -> (V, K) joint ids and weights, K = most joints any vertex uses.

    Padding slots carry weight 0 (so they add exactly nothing); a dense model simply gets K = J."""
    k = max(int((weights != 0).sum(1).max()), 1)
    value, index = weights.topk(k, dim=1)
    return index.contiguous(), value.contiguous()


def rigid_lbs(
    betas,
    rot_mats,
    v_template,
    shapedirs,
    joint_template,
    joint_shapedirs,
    parents,
    skin_index,
    skin_weight,
    block: int | None = None,
):
    """``smplx.lbs.lbs`` without pose correctives: vertices (B, V, 3), posed joints (B, J, 3).

    Rest joints are the regressed template plus regressed blend shapes (the joint regressor is
    linear, so this is exact and skips a (J, V) product per sample); smplx's kinematic chain gives
    the relative transforms. ``skin_index`` / ``skin_weight`` come from :func:`sparse_skinning`.
    ``block`` (vertices per block) defaults to a cache-sized block on CPU, all vertices elsewhere.
    """
    b, nv = betas.shape[0], v_template.shape[0]
    joints = joint_template + blend_shapes(betas, joint_shapedirs)
    posed_joints, rel = batch_rigid_transform(rot_mats, joints, parents, dtype=v_template.dtype)
    nj = rel.shape[1]
    per_joint = (
        rel[:, :, :3, :].permute(1, 2, 3, 0).reshape(nj, 12 * b)
    )  # (J, 3x4 x B), sample innermost
    template, dirs, betas_t = v_template.reshape(nv * 3, 1), shapedirs.reshape(nv * 3, -1), betas.T
    if b == 0:  # embedding_bag cannot gather from an empty table
        return v_template.new_empty(0, nv, 3), posed_joints
    if block is None:
        block = (
            max(8, CPU_BLOCK_FLOATS // max(12 * b, 1)) if v_template.device.type == "cpu" else nv
        )
    # Without autograd each block is written in place; with it, blocks are concatenated (out= has no grad).
    tracked = torch.is_grad_enabled() and (per_joint.requires_grad or betas.requires_grad)
    verts = None if tracked else v_template.new_empty(nv, 3, b)
    parts = []
    for s in range(0, nv, block):
        e = min(nv, s + block)
        t = F.embedding_bag(
            skin_index[s:e], per_joint, per_sample_weights=skin_weight[s:e], mode="sum"
        )
        t = t.view(e - s, 3, 4, b)
        x = torch.addmm(template[3 * s : 3 * e], dirs[3 * s : 3 * e], betas_t).view(e - s, 3, b)
        v = torch.addcmul(
            t[:, :, 3], t[:, :, 0], x[:, None, 0], out=None if tracked else verts[s:e]
        )
        parts.append(v.addcmul_(t[:, :, 1], x[:, None, 1]).addcmul_(t[:, :, 2], x[:, None, 2]))
    if tracked:
        verts = torch.cat(parts) if len(parts) > 1 else parts[0]
    return verts.permute(2, 0, 1), posed_joints
