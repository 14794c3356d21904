import io
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from genzoo_assets.core.body import (
    BodyModelError,
    load_body_model,
    procedural_body_model,
    save_body_model,
)
from genzoo_assets.core.body.info import body_info

from .fixtures import smal_topology_model, tiny_arrays
from .py2_pickle import Ch, dumps_py2

REPO = Path(__file__).resolve().parents[3]

FAKE_CHUMPY = {
    "chumpy/__init__.py": "from .ch import Ch\n",
    "chumpy/ch.py": textwrap.dedent("""
        import numpy as np
        class Ch(object):
            def __init__(self, x):
                self.x = np.asarray(x)
                self._cache = {}
                self._parents = {}
            def __getstate__(self):  # like chumpy: caches and parents are not pickled
                return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_parents")}
    """),
    "chumpy/reordering.py": textwrap.dedent("""
        from .ch import Ch
        class transpose(Ch):
            def __init__(self, a, axes):
                self.a, self.axes = a, axes
                self._cache = {}
                self._parents = {}
    """),
}

WRITER = textwrap.dedent("""
    import pickle, sys
    import numpy as np, scipy.sparse
    import chumpy
    from chumpy.reordering import transpose
    a = dict(np.load(sys.argv[1]))
    kt = a["kintree_table"].astype(np.uint32)
    kt[0, 0] = 4294967295
    model = {
        "v_template": chumpy.Ch(a["v_template"]),
        "shapedirs": transpose(chumpy.Ch(a["shapedirs"].transpose(2, 0, 1)), (1, 2, 0)),
        "posedirs": a["posedirs"],
        "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]),
        "weights": chumpy.Ch(a["weights"]),
        "kintree_table": kt,
        "f": a["f"].astype(np.uint32),
        "bs_style": "lbs", "bs_type": "lrotmin",
    }
    with open(sys.argv[2], "wb") as fh:
        pickle.dump(model, fh, protocol=2)
""")

READER = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np, torch
    assert importlib.util.find_spec("chumpy") is None, "chumpy must not be importable here"
    from genzoo_assets.core.body import load_body_model
    m = load_body_model(sys.argv[1])
    a = dict(np.load(sys.argv[2]))
    assert np.allclose(m.shapedirs.double().numpy(), a["shapedirs"], atol=1e-7)
    assert np.allclose(m.v_template.double().numpy(), a["v_template"], atol=1e-7)
    assert m.num_betas == 41 and list(m.parents[:3]) == [-1, 0, 1]
    out = m(torch.zeros(2, 41), torch.zeros(2, 3), torch.zeros(2, 34, 3))
    assert out.keypoints.shape == (2, 26, 3)
    print("OK", m.sha256)
""")


def test_chumpy_smal_pickle_loads_without_chumpy(tmp_path):
    fake = tmp_path / "fake"
    for rel, text in FAKE_CHUMPY.items():
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(text)
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, **tiny_arrays(num_vertices=50, num_betas=41))
    pkl = tmp_path / "smal_CVPR2017.pkl"
    env = {"PYTHONPATH": str(fake), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-c", WRITER, str(arrays), str(pkl)], check=True, env=env, cwd=tmp_path
    )
    assert b"chumpy.ch" in pkl.read_bytes() and b"chumpy.reordering" in pkl.read_bytes()
    res = subprocess.run(
        [sys.executable, "-c", READER, str(pkl), str(arrays)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK ")


def test_python2_latin1_smal_pickle(tmp_path):
    """The original release's format: Python 2 str payloads (latin-1), chumpy Ch, old scipy csc."""
    a = tiny_arrays(num_vertices=64, num_betas=41, seed=7)
    kt = a["kintree_table"].astype(np.uint32)
    kt[0, 0] = 2**32 - 1
    raw = {
        "v_template": Ch(a["v_template"]),
        "shapedirs": Ch(a["shapedirs"]),
        "posedirs": a["posedirs"],
        "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]),
        "weights": Ch(a["weights"]),
        "kintree_table": kt,
        "f": a["f"],
        "bs_style": "lbs",
    }
    path = tmp_path / "smal_CVPR2017.pkl"
    path.write_bytes(dumps_py2(raw))
    with pytest.raises(ModuleNotFoundError, match="chumpy"):
        pickle.loads(path.read_bytes())
    with pytest.raises(
        UnicodeDecodeError
    ):  # py2 str payloads: Python 3's default ASCII decoding fails
        pickle.loads(dumps_py2({"posedirs": a["posedirs"]}))
    m = load_body_model(path, dtype=torch.float64)
    assert m.num_betas == 41 and m.parents[0] == -1 and tuple(m.parents[1:4]) == (0, 1, 2)
    np.testing.assert_allclose(m.J_regressor.numpy(), a["J_regressor"], atol=1e-12)
    np.testing.assert_allclose(m.shapedirs.numpy(), a["shapedirs"], atol=1e-12)
    assert m.faces.dtype == np.int64 and (m.faces == a["f"]).all()


def test_nochumpy_smal_plus_pickle_with_145_betas(tmp_path):
    a = tiny_arrays(num_vertices=70, num_betas=145)
    a["J_regressor"] = scipy.sparse.csr_matrix(a["J_regressor"])
    path = tmp_path / "smal_plus_nochumpy.pkl"
    path.write_bytes(pickle.dumps(a, protocol=4))
    m = load_body_model(path)
    assert m.num_betas == 145 and m.num_vertices == 70 and m.sha256 and m.source == str(path)
    out = m(torch.randn(3, 145) * 0.1, torch.zeros(3, 3), torch.zeros(3, 102))
    assert out.vertices.shape == (3, 70, 3)
    info = body_info(str(path))
    assert (
        info["num_betas"] == 145 and info["num_joints"] == 35 and info["joint_names"][16] == "Head"
    )


def test_npz_round_trip_and_procedural_info(tmp_path):
    bm = procedural_body_model()
    path = save_body_model(bm, tmp_path / "proc.npz")
    back = load_body_model(path, dtype=torch.float64)
    assert back.keypoint_groups == bm.keypoint_groups
    np.testing.assert_allclose(back.canonical_rotation, np.eye(3))
    betas = torch.randn(2, 20)
    pose = torch.randn(2, 34, 3) * 0.3
    a, b = bm(betas, torch.zeros(2, 3), pose), back(betas.double(), torch.zeros(2, 3), pose)
    assert torch.allclose(a.vertices.double(), b.vertices, atol=1e-5)
    info = body_info("procedural")
    assert info["num_vertices"] == bm.num_vertices and info["num_faces"] == bm.num_faces
    assert info["num_betas"] == 20 and info["source"].startswith("procedural")


def test_smal_style_file_gets_derived_orientation_and_keypoints(tmp_path):
    """A z-up, head-along--x copy of the procedural model, stripped of keypoints and orientation."""
    bm = procedural_body_model()
    from genzoo_assets.core.body.io import model_arrays

    a = model_arrays(bm)
    c = np.array(
        [[-1.0, 0, 0], [0, 0, 1], [0, 1, 0]]
    )  # model->canonical: x_c=-x_m, y_c=z_m, z_c=y_m
    assert np.linalg.det(c) > 0
    a["v_template"] = a["v_template"] @ c  # canonical -> model is c.T: v_m = c.T v_c
    a["shapedirs"] = np.einsum("vcb,cd->vdb", a["shapedirs"], c)
    for k in ("keypoint_groups", "canonical_rotation", "joint_names"):
        del a[k]
    path = tmp_path / "rotated.npz"
    np.savez(path, **a)
    m = load_body_model(path)
    np.testing.assert_allclose(m.canonical_rotation, c)
    out = m(torch.zeros(1, 20), torch.zeros(1, 3), torch.zeros(1, 34, 3))
    kp = (out.keypoints[0].double().numpy()) @ c.T
    ref = (
        bm(torch.zeros(1, 20), torch.zeros(1, 3), torch.zeros(1, 34, 3))
        .keypoints[0]
        .double()
        .numpy()
    )
    names = bm.keypoint_names
    # Derived groups land at the same semantic places as the hand-placed ones (within 8 cm on a 1.4 m body).
    err = np.linalg.norm(kp - ref, axis=1)
    assert err.max() < 0.08, dict(zip(names, err.round(3)))
    idx = {n: i for i, n in enumerate(names)}
    assert kp[idx["nose"], 0] == kp[:, 0].max() or kp[idx["nose"], 0] > kp[idx["left_eye"], 0]
    assert kp[idx["left_front_paw"], 2] < 0 < kp[idx["right_front_paw"], 2]
    assert max(kp[idx[n], 1] for n in names if n.endswith("paw")) < 0.06


def _write_bad(kind: str, tmp: Path) -> Path:
    p = tmp / f"{kind}.pkl"
    good = tiny_arrays()
    if kind == "missing_file":
        return tmp / "nope.pkl"
    if kind == "directory":
        p.mkdir()
        return p
    if kind == "text_file":
        p.write_text("this is a README, not a body model\n")
    elif kind == "png_file":
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    elif kind == "truncated_pickle":
        p.write_bytes(pickle.dumps(good, protocol=4)[:500])
    elif kind == "truncated_npz":
        buf = io.BytesIO()
        np.savez(buf, **good)
        p.write_bytes(buf.getvalue()[:300])
    elif kind == "not_a_dict":
        p.write_bytes(pickle.dumps([1, 2, 3]))
    elif kind == "code_in_pickle":
        p.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    else:
        a = dict(good)
        if kind == "missing_key":
            del a["weights"]
        elif kind == "shapedirs_vertex_count":
            a["shapedirs"] = a["shapedirs"][:-3]
        elif kind == "weights_shape":
            a["weights"] = a["weights"][:, :30]
        elif kind == "faces_out_of_range":
            a["f"] = a["f"].astype(np.int64)
            a["f"][0, 0] = 10_000
        elif kind == "kintree_shape":
            a["kintree_table"] = a["kintree_table"][0]
        elif kind == "non_finite":
            a["v_template"] = a["v_template"].copy()
            a["v_template"][3, 1] = np.nan
        elif kind == "non_numeric":
            a["weights"] = "not an array"
        elif kind == "wrong_joint_count":
            a["kintree_table"] = a["kintree_table"][:, :33]
            a["weights"], a["J_regressor"] = a["weights"][:, :33], a["J_regressor"][:33]
        p.write_bytes(pickle.dumps(a, protocol=4))
    return p


BAD = {
    "missing_file": "not found",
    "directory": "directory",
    "text_file": "not a pickle or .npz",
    "png_file": "not a pickle or .npz",
    "truncated_pickle": "truncated or corrupt pickle",
    "truncated_npz": "corrupt or truncated .npz",
    "not_a_dict": "expected a dict",
    "code_in_pickle": "refusing to load global",
    "missing_key": "missing key.*weights",
    "shapedirs_vertex_count": "shapedirs.*vertex count",
    "weights_shape": "weights.*must be",
    "faces_out_of_range": "faces.*outside",
    "kintree_shape": "kintree_table.*\\(2, J\\)",
    "non_finite": "v_template.*non-finite",
    "wrong_joint_count": "33 joints",
    "non_numeric": "weights.*not a numeric array",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_model_files_give_clear_errors(kind, tmp_path):
    path = _write_bad(kind, tmp_path)
    with pytest.raises(BodyModelError, match=BAD[kind]) as exc:
        load_body_model(path)
    assert str(path) in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_smal_topology_gets_animer_keypoints_and_other_meshes_derived_groups(tmp_path):
    from genzoo_assets.core.body.animer_keypoints import ANIMER_KEYPOINT_VERTICES

    m = smal_topology_model(tmp_path, num_betas=41)
    assert m.num_vertices == 3889 and m.keypoint_set == "animer"
    assert m.keypoint_groups == [list(g) for g in ANIMER_KEYPOINT_VERTICES]
    out = m(torch.randn(2, 41) * 0.5, torch.randn(2, 3) * 0.5, torch.randn(2, 34, 3) * 0.3)
    v = out.vertices.double().numpy()
    expected = np.stack([v[:, list(g)].mean(1) for g in ANIMER_KEYPOINT_VERTICES], axis=1)
    np.testing.assert_allclose(out.keypoints.double().numpy(), expected, atol=1e-6)
    assert body_info(m.source)["keypoint_set"] == "animer"
    back = load_body_model(save_body_model(m, tmp_path / "saved.npz"))
    assert back.keypoint_set == "animer" and back.keypoint_groups == m.keypoint_groups

    other = tmp_path / "other.npz"
    np.savez(
        other, **tiny_arrays(num_vertices=3888, num_betas=5)
    )  # one vertex short of SMAL's mesh
    assert load_body_model(other).keypoint_set == "derived"
    a = tiny_arrays(num_vertices=3889, num_betas=5)
    a["kintree_table"][0, 34] = 15  # REar hung off the neck: not SMAL's joint tree
    np.savez(tmp_path / "tree.npz", **a)
    assert load_body_model(tmp_path / "tree.npz").keypoint_set == "derived"
    assert procedural_body_model().keypoint_set == "derived"
