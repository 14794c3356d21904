"""GenZoo's trainer, reading our shards its own way, recovers our 2D annotation (v1 and v2).

The pipeline's own stages (pose sampler, camera sampler, renderer at GenZoo's 1024²) make the
samples on a SMAL-topology model written as an smplx model file; ``genzoo_reader`` decodes the
export as ``hmr2/datasets/image_dataset.py`` does.
"""

import numpy as np
import pandas as pd
import pytest

from genzoo_assets.core.body.io import load_body_model
from genzoo_assets.core.dataset.reader import shard_urls
from genzoo_assets.core.dataset.webdataset import export_shards, read_manifest
from genzoo_assets.core.render.partition import render_partition
from genzoo_assets.core.sampling.partition import sample_poses_partition
from genzoo_assets.core.sampling.poses import make_pose_sampler
from genzoo_assets.core.seeds import sample_id
from genzoo_assets_tests.core.regressor.genzoo_reader import decode, errors, load_layer
from genzoo_assets_tests.core.regressor.smal_topology import NUM_BETAS, write_smal_topology_model

pytestmark = pytest.mark.slow
RES = 1024
CAMERAS = {"v1": "weak", "v2": "perspective"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("genzoo_compat")
    model_path = write_smal_topology_model(root / "smal_topology.pkl")
    bm = load_body_model(model_path)
    rng = np.random.default_rng(3)
    parts = []
    for shard, camera in enumerate(CAMERAS.values()):
        ids = [sample_id("testus_animalis", f"{shard:03d}", i) for i in range(4)]
        betas = rng.normal(0.0, 1.0, (len(ids), NUM_BETAS))
        betas[-1, 7] = 12.0  # GenZoo's `select` drops this one: the export must leave it out
        shapes = pd.DataFrame(
            {
                "sample_id": ids,
                "species": "testus_animalis",
                "shard": f"{shard:03d}",
                "index": range(len(ids)),
                "betas": [b.tolist() for b in betas],
            }
        )
        poses = sample_poses_partition(
            shapes, bm, make_pose_sampler("procedural", bm), camera_model=camera, resolution=RES
        )
        merged = shapes.merge(poses.drop(columns=["species", "shard", "index"]), on="sample_id")
        renders = render_partition(merged, bm, root, resolution=RES)
        parts.append(
            merged.merge(
                renders.drop(columns=["species", "shard", "index", "provenance"]), on="sample_id"
            )
        )
    samples = pd.concat(parts, ignore_index=True)
    samples["image_path"] = samples["rgb_path"]
    samples["family"], samples["flagged"] = "Testidae", False
    return {"root": root, "model_path": model_path, "bm": bm, "samples": samples}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_genzoo_decoding_reproduces_our_annotation(pipeline, version, tmp_path):
    samples = pipeline["samples"][pipeline["samples"]["camera_model"] == CAMERAS[version]]
    out = tmp_path / "shards"
    export_shards(
        samples,
        pipeline["root"],
        out,
        heldout_families=(),
        val_fraction=0.0,
        camera_version=version,
        body_model=pipeline["bm"],
    )
    decoded = decode(
        shard_urls(out, "train"),
        load_layer(pipeline["model_path"]),
        version,
        pipeline["bm"].keypoint_groups,
    )
    measured = errors(decoded, samples)
    print(f"GenZoo decoding, {version}: {measured}")
    assert measured["samples"] == len(samples) - 1
    assert measured["keypoints_px"] < 0.5
    assert measured["bbox_px"] < 2.0
    manifest = read_manifest(out)
    assert (
        manifest["excluded"]["betas_out_of_range"] == 1
        and manifest["counts"]["train"] == len(samples) - 1
    )
    assert manifest["camera_version"] == version and set(manifest["camera_conventions"]) == {
        "v1",
        "v2",
    }
