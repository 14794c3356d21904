import numpy as np
import pytest
import trimesh

from genzoo_assets.core.render.subdivision import LoopSubdivision


def _open_mesh() -> trimesh.Trimesh:
    """Half a cylinder's faces: a mesh with boundary edges (exercises the boundary stencils)."""
    m = trimesh.creation.cylinder(0.3, 1.0, sections=10)
    half = trimesh.Trimesh(m.vertices, m.faces[: len(m.faces) // 2], process=False)
    half.remove_unreferenced_vertices()
    return half


@pytest.mark.parametrize(
    "mesh",
    [trimesh.creation.icosphere(1), trimesh.creation.box(), _open_mesh()],
    ids=["icosphere", "box", "open"],
)
@pytest.mark.parametrize("iterations", [1, 2])
def test_matrix_equals_trimesh_loop(mesh, iterations):
    rng = np.random.default_rng(0)
    verts = mesh.vertices + 0.05 * rng.standard_normal(mesh.vertices.shape)
    sub = LoopSubdivision.build(mesh.faces, iterations, len(verts))
    ref_v, ref_f = trimesh.remesh.subdivide_loop(verts, mesh.faces, iterations=iterations)
    np.testing.assert_array_equal(sub.faces, ref_f)
    np.testing.assert_allclose(sub(verts), ref_v, rtol=0, atol=1e-12)
    # The same matrix serves any pose of the topology.
    verts2 = verts * 1.7 + 0.3
    ref2 = trimesh.remesh.subdivide_loop(verts2, mesh.faces, iterations)[0]
    np.testing.assert_allclose(sub(verts2), ref2, atol=1e-12)


def test_bad_topology_is_named():
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    with pytest.raises(ValueError, match="more than two faces"):
        LoopSubdivision.build(faces, 1)
    with pytest.raises(ValueError, match="not used by any face"):
        LoopSubdivision.build(np.array([[0, 1, 2]]), 1, num_vertices=5)
    with pytest.raises(ValueError, match="vertices must be"):
        LoopSubdivision.build(np.array([[0, 1, 2]]), 1)(np.zeros((4, 3)))
