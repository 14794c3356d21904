import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def catalog(body_model, tmp_path_factory):
    """32 synthetic samples (5 species, one Felidae) and their export (v1 weak camera)."""
    from genzoo_assets.core.dataset.webdataset import export_shards
    from genzoo_assets_tests.core.regressor.synthetic import make_samples

    data_dir = tmp_path_factory.mktemp("regressor_data")
    samples = make_samples(body_model, data_dir, n=32)
    samples.loc[3, "flagged"] = True
    out_dir = data_dir / "shards"
    result = export_shards(
        samples,
        data_dir,
        out_dir,
        val_fraction=0.25,
        maxcount=8,
        camera_version="v1",
        body_model=body_model,
    )
    return {"samples": samples, "data_dir": data_dir, "out_dir": out_dir, "result": result}
