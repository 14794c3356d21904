import numpy as np
import pytest
import torch
from smplx.lbs import lbs as smplx_lbs

from genzoo_assets.core.body import BodyModel
from genzoo_assets.core.body.rotations import axis_angle_to_matrix
from genzoo_assets.core.body.skinning import rigid_lbs, sparse_skinning

from .fixtures import tiny_arrays


def _two_joint_arrays(seed: int = 7):
    """Tiny model whose vertices each depend on one or two joints, as procedural/SMAL models do."""
    a = tiny_arrays(num_vertices=50, num_betas=4, seed=seed)
    rng = np.random.default_rng(seed)
    w = np.zeros_like(a["weights"])
    for v in range(w.shape[0]):
        j = rng.choice(35, size=1 + v % 2, replace=False)
        w[v, j] = rng.random(j.size) + 0.1
    a["weights"] = w / w.sum(1, keepdims=True)
    return a


def _model(a, dtype):
    return BodyModel(
        a["v_template"],
        a["shapedirs"],
        a["posedirs"],
        a["J_regressor"],
        a["weights"],
        a["kintree_table"][0],
        a["f"],
        keypoint_groups=[[i, i + 1] for i in range(26)],
        dtype=dtype,
    )


def _smplx(m, betas, rot):
    return smplx_lbs(
        betas,
        rot,
        m.v_template,
        m.shapedirs,
        m.posedirs,
        m.J_regressor,
        m.parents_t,
        m.lbs_weights,
        pose2rot=False,
    )


def test_sparse_tables_keep_only_used_joints_with_exact_weights():
    a = _two_joint_arrays()
    index, weight = sparse_skinning(torch.tensor(a["weights"]))
    assert index.shape == (50, 2)
    dense = torch.zeros(50, 35, dtype=weight.dtype).scatter_add_(1, index, weight)
    assert torch.equal(dense, torch.tensor(a["weights"]))


@pytest.mark.parametrize("block", [None, 1, 7, 50])
def test_blocked_sparse_skinning_matches_smplx_lbs(block):
    a = _two_joint_arrays()
    m = _model(a, torch.float64)
    rng = np.random.default_rng(3)
    betas = torch.tensor(rng.normal(size=(5, 4)))
    rot = axis_angle_to_matrix(torch.tensor(rng.normal(size=(5, 35, 3)))).contiguous()
    verts, joints = rigid_lbs(
        betas,
        rot,
        m.v_template,
        m.shapedirs,
        m.joint_template,
        m.joint_shapedirs,
        m.parents_t,
        m.skin_index,
        m.skin_weight,
        block=block,
    )
    ref_v, ref_j = _smplx(m, betas, rot)
    assert verts.shape == (5, 50, 3)
    assert (verts - ref_v).abs().max() < 1e-12 and (joints - ref_j).abs().max() < 1e-12


def test_gradients_flow_and_agree_with_smplx():
    """The regressor trains through the body model: blocks are concatenated when autograd records."""
    m = _model(_two_joint_arrays(), torch.float64)
    rng = np.random.default_rng(4)
    aa = torch.tensor(rng.normal(size=(3, 35, 3)), requires_grad=True)
    betas = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    out = m(betas, aa[:, 0], aa[:, 1:])
    (out.vertices.square().sum() + out.keypoints.sum()).backward()
    grads = aa.grad.clone(), betas.grad.clone()
    aa.grad, betas.grad = None, None
    ref_v, _ = _smplx(m, betas, axis_angle_to_matrix(aa))
    kps = (ref_v[:, m.keypoint_index] * m.keypoint_weight[..., None]).sum(2)
    (ref_v.square().sum() + kps.sum()).backward()
    assert torch.allclose(grads[0], aa.grad, atol=1e-9) and torch.allclose(
        grads[1], betas.grad, atol=1e-9
    )


def test_float32_batch_equals_per_sample_and_empty_batch():
    m = _model(_two_joint_arrays(), torch.float32)
    torch.manual_seed(0)
    betas, go, bp = torch.randn(9, 4), torch.randn(9, 3), 0.5 * torch.randn(9, 34, 3)
    with torch.inference_mode():
        out = m(betas, go, bp)
        for i in range(9):
            one = m(betas[i : i + 1], go[i : i + 1], bp[i : i + 1])
            assert (one.vertices[0] - out.vertices[i]).abs().max() < 1e-5
            assert (one.keypoints[0] - out.keypoints[i]).abs().max() < 1e-5
        empty = m(betas[:0], go[:0], bp[:0])
    assert out.vertices.dtype == torch.float32
    assert empty.vertices.shape == (0, 50, 3) and empty.keypoints.shape == (0, 26, 3)
