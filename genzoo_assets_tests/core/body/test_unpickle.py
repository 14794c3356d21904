import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from genzoo_assets.core.body import BodyModelError, load_body_model
from genzoo_assets.core.body.unpickle import ALLOWED, UnpickleRefused, safe_load
from genzoo_assets.core.sampling.shape_prior import SmalDataError, load_smal_clusters
from genzoo_assets_tests.fixtures import malicious

from .fixtures import tiny_arrays

PAYLOADS = sorted(malicious.payloads(Path("/x")))


@pytest.mark.parametrize("name", PAYLOADS)
def test_body_model_pickle_cannot_run_code(name, tmp_path):
    marker = tmp_path / "touched"
    data, refused = malicious.payloads(marker)[name]
    malicious.proves_live(data, marker)
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(BodyModelError) as exc:
        load_body_model(path)
    assert not marker.exists()
    message = str(exc.value)
    assert (
        "\n" not in message
        and str(path) in message
        and f"refusing to load global {refused} " in message
    )


@pytest.mark.parametrize("name", PAYLOADS)
def test_smal_data_pickle_cannot_run_code(name, tmp_path):
    marker = tmp_path / "touched"
    data, refused = malicious.payloads(marker)[name]
    path = tmp_path / "smal_data.pkl"
    path.write_bytes(data)
    with pytest.raises(SmalDataError) as exc:
        load_smal_clusters(path)
    assert not marker.exists()
    assert str(path) in str(exc.value) and refused in str(exc.value) and "\n" not in str(exc.value)


def test_allow_list_is_exact_pairs():
    """No dotted names and no look-alike modules: only the listed (module, name) pairs resolve."""
    assert all("." not in name for _, name in ALLOWED)
    for module, name in [
        ("numpy._core.numeric", "builtins.exec"),
        ("numpy", "load"),
        ("numpy.numeric", "exec"),
        ("mynumeric", "system"),
        ("scipy.sparse", "load_npz"),
        ("copyreg", "__newobj__"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("chumpy", "ch.Ch"),
    ]:
        with pytest.raises(UnpickleRefused, match=f"global {module}.{name} "):
            safe_load(malicious.stack_global(Path("/nonexistent/x"), module, name))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_and_sparse_pickles_of_every_protocol_load(protocol, tmp_path):
    """SMAL+ "nochumpy" files as numpy 2 / scipy 1.1x write them (protocol 5: ``_frombuffer``)."""
    a = tiny_arrays(num_vertices=40, num_betas=7)
    a["J_regressor"] = scipy.sparse.csr_matrix(a["J_regressor"])
    a["extra"] = {
        "scale": np.float64(2.0),
        "ids": {1, 2},
        "sparse_array": scipy.sparse.coo_array(np.eye(2)),
    }
    path = tmp_path / "smal_plus_nochumpy.pkl"
    path.write_bytes(pickle.dumps(a, protocol=protocol))
    m = load_body_model(path)
    assert m.num_betas == 7 and m.num_vertices == 40
    np.testing.assert_allclose(
        m.J_regressor.double().numpy(), a["J_regressor"].toarray(), atol=1e-6
    )
