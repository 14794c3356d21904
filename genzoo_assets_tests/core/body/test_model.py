import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from smplx.lbs import lbs as smplx_lbs

from genzoo_assets.core.body import BodyModel, BodyModelError, procedural_body_model
from genzoo_assets.core.body.rotations import axis_angle_to_matrix

from .fixtures import tiny_arrays


def _model(a, **kw):
    return BodyModel(
        a["v_template"],
        a["shapedirs"],
        a["posedirs"],
        a["J_regressor"],
        a["weights"],
        a["kintree_table"][0],
        a["f"],
        keypoint_groups=[[i, i + 1] for i in range(26)],
        **kw,
    )


def naive_lbs(a, betas, pose_aa):
    """Textbook LBS, one sample at a time, in float64 numpy (independent of smplx and of our code)."""
    parents = a["kintree_table"][0]
    nv = a["v_template"].shape[0]
    v_shaped = a["v_template"] + a["shapedirs"] @ betas
    j = a["J_regressor"] @ v_shaped
    rots = Rotation.from_rotvec(pose_aa).as_matrix()
    feat = (rots[1:] - np.eye(3)).reshape(-1)
    v_posed = v_shaped + (a["posedirs"].reshape(nv * 3, -1) @ feat).reshape(nv, 3)
    g = np.zeros((35, 4, 4))
    for i in range(35):
        local = np.eye(4)
        local[:3, :3] = rots[i]
        local[:3, 3] = j[i] - (j[parents[i]] if i else 0)
        g[i] = local if i == 0 else g[parents[i]] @ local
    joints = g[:, :3, 3].copy()
    a_mats = g.copy()
    a_mats[:, :3, 3] -= np.einsum("jab,jb->ja", g[:, :3, :3], j)
    t = np.einsum("vj,jab->vab", a["weights"], a_mats)
    verts = np.einsum("vab,vb->va", t[:, :3, :3], v_posed) + t[:, :3, 3]
    return verts, joints


@pytest.fixture(scope="module")
def tiny():
    return tiny_arrays(num_vertices=80, num_betas=6, posedirs_scale=0.01)


def test_lbs_matches_naive_reference_and_smplx(tiny):
    rng = np.random.default_rng(0)
    m = _model(tiny, dtype=torch.float64)
    betas = rng.normal(size=(3, 6))
    pose = rng.normal(size=(3, 35, 3)) * 0.5
    out = m(torch.tensor(betas), torch.tensor(pose[:, 0]), torch.tensor(pose[:, 1:]))
    for b in range(3):
        verts, joints = naive_lbs(tiny, betas[b], pose[b])
        assert np.abs(out.vertices[b].numpy() - verts).max() < 1e-10
        assert np.abs(out.joints[b].numpy() - joints).max() < 1e-10
    # smplx's own forward (its Rodrigues, pose2rot=True), called independently.
    nv = tiny["v_template"].shape[0]
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    ref_v, ref_j = smplx_lbs(
        t(betas),
        t(pose.reshape(3, -1)),
        t(tiny["v_template"]),
        t(tiny["shapedirs"]),
        t(tiny["posedirs"].reshape(nv * 3, -1).T),
        t(tiny["J_regressor"]),
        torch.tensor(tiny["kintree_table"][0]).long().clamp(min=-1),
        t(tiny["weights"]),
    )
    m32 = _model(tiny)
    out32 = m32(t(betas), t(pose[:, 0]), t(pose[:, 1:]))
    assert (out32.vertices - ref_v).abs().max() < 1e-5
    assert (out32.joints - ref_j).abs().max() < 1e-5


def test_pose_input_forms_agree_and_betas_padding(tiny):
    m = _model(tiny, dtype=torch.float64)
    rng = np.random.default_rng(1)
    go, bp = torch.tensor(rng.normal(size=(2, 3))), torch.tensor(rng.normal(size=(2, 34, 3)) * 0.3)
    betas = torch.tensor(rng.normal(size=(2, 4)))
    ref = m(betas, go, bp)
    for g, p in [
        (go, bp.reshape(2, 102)),
        (axis_angle_to_matrix(go), axis_angle_to_matrix(bp)),
        (axis_angle_to_matrix(go)[:, None], bp),
    ]:
        assert torch.allclose(m(betas, g, p).vertices, ref.vertices, atol=1e-12)
    padded = torch.cat([betas, torch.zeros(2, 2, dtype=betas.dtype)], 1)
    assert torch.allclose(m(padded, go, bp).vertices, ref.vertices)
    with pytest.raises(ValueError, match="7 columns.*only 6"):
        m(torch.zeros(2, 7), go, bp)
    with pytest.raises(ValueError, match="body_pose"):
        m(betas, go, torch.zeros(2, 33, 3))
    with pytest.raises(ValueError, match="global_orient"):
        m(betas, torch.zeros(2, 4), bp)


def test_transl_shifts_everything_and_keypoints_are_group_means(tiny):
    m = _model(tiny)
    rng = np.random.default_rng(2)
    args = (
        torch.zeros(2, 6),
        torch.tensor(rng.normal(size=(2, 3)), dtype=torch.float32),
        torch.tensor(rng.normal(size=(2, 34, 3)), dtype=torch.float32) * 0.2,
    )
    base = m(*args)
    shift = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.1, 0.2]])
    moved = m(*args, transl=shift)
    for a, b in (
        (moved.vertices, base.vertices),
        (moved.joints, base.joints),
        (moved.keypoints, base.keypoints),
    ):
        assert torch.allclose(a - b, shift[:, None].expand_as(a), atol=1e-5)
    for k, group in enumerate(m.keypoint_groups):
        assert torch.allclose(base.keypoints[:, k], base.vertices[:, group].mean(1), atol=1e-6)


def test_float64_and_tpose_vertices():
    bm = procedural_body_model().to(torch.float64)
    betas = torch.zeros(2, 20, dtype=torch.float64)
    betas[1, 1] = 2.0
    out = bm(
        betas, torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 34, 3, dtype=torch.float64)
    )
    assert out.vertices.dtype == torch.float64 and out.keypoints.dtype == torch.float64
    assert torch.allclose(bm.tpose_vertices(betas), out.vertices)
    assert bm.faces.dtype == np.int64 and bm.canonical_rotation.shape == (3, 3)
    assert len(bm.keypoint_names) == 26 and len(bm.keypoint_groups) == 26 and bm.num_joints == 35


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_follows_module():
    bm = procedural_body_model().to("cuda")
    out = bm(torch.zeros(2, 20), torch.zeros(2, 3), torch.zeros(2, 34, 3))
    assert out.vertices.device.type == "cuda"


def test_constructor_rejects_bad_canonical_rotation(tiny):
    with pytest.raises(BodyModelError, match="canonical_rotation"):
        _model(tiny, canonical_rotation=np.diag([1.0, 1.0, -1.0]))


def test_rigid_fast_path_matches_smplx_lbs():
    """Models without pose correctives skip the posedirs product; the result must equal smplx's lbs."""
    a = tiny_arrays(num_vertices=90, num_betas=6, seed=4)
    m = _model(a, dtype=torch.float64)
    assert not m.pose_correctives
    rng = np.random.default_rng(5)
    betas, pose = torch.tensor(rng.normal(size=(4, 6))), torch.tensor(rng.normal(size=(4, 35, 3)))
    out = m(betas, pose[:, 0], pose[:, 1:])
    t = lambda x: torch.tensor(np.asarray(x), dtype=torch.float64)  # noqa: E731
    ref_v, ref_j = smplx_lbs(
        betas,
        pose.reshape(4, -1),
        t(a["v_template"]),
        t(a["shapedirs"]),
        torch.zeros(306, 270, dtype=torch.float64),
        t(a["J_regressor"]),
        torch.tensor(a["kintree_table"][0]).long(),
        t(a["weights"]),
    )
    # smplx's Rodrigues adds 1e-8 to each axis-angle before its norm, hence 1e-7 rather than 1e-12.
    assert (out.vertices - ref_v).abs().max() < 1e-7 and (out.joints - ref_j).abs().max() < 1e-7
