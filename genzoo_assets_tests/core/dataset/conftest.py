import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from genzoo_assets.core.body.io import load_body_model
from genzoo_assets.core.body.rotations import matrix_to_axis_angle
from genzoo_assets.core.sampling.camera_model import Camera, project, view_rotation
from genzoo_assets.core.seeds import sample_id
from genzoo_assets_tests.core.regressor.smal_topology import write_smal_topology_model

SPECIES = {"canis_lupus": "Canidae", "bos_taurus": "Bovidae", "felis_catus": "Felidae"}
RES = 64


@pytest.fixture(scope="session")
def smal41(tmp_path_factory):
    """A 41-beta SMAL-topology model (Animal3D's shape space)."""
    return load_body_model(
        write_smal_topology_model(tmp_path_factory.mktemp("smal41") / "smal41.pkl", num_betas=41)
    )


def make_catalog_rows(body_model, data_dir, per_species: int = 2, seed: int = 0) -> pd.DataFrame:
    """``samples`` rows (the catalog's columns the exports read), consistent with ``body_model``:
    ``keypoints_3d`` is the posed, translated body's, ``keypoints_2d`` its projection."""
    rng = np.random.default_rng(seed)
    rows = []
    for sp, family in SPECIES.items():
        for i in range(per_species):
            sid = sample_id(sp, "000", i)
            betas = rng.normal(0, 1, body_model.num_betas)
            go = view_rotation(rng.uniform(-120, 120), rng.uniform(0, 30))
            body_pose = rng.normal(0, 0.15, 102)
            transl = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 4.0])
            with torch.no_grad():
                kp3 = body_model(
                    betas[None], torch.from_numpy(go)[None], body_pose[None], transl[None]
                ).keypoints
            kp3 = kp3[0].double().numpy()
            cam = Camera("perspective", RES, fov_deg=40.0)
            kp2 = project(kp3, cam)
            image, mask = f"images/{sp}/000/{sid}.jpg", f"renders/{sp}/000/{sid}.mask.png"
            for rel, arr in (
                (image, rng.integers(0, 255, (RES, RES, 3), dtype=np.uint8)),
                (mask, np.where(rng.random((RES, RES)) > 0.5, 255, 0).astype(np.uint8)),
            ):
                (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(data_dir / rel), arr)
            x0, y0 = kp2.min(0)
            x1, y1 = kp2.max(0)
            rows.append(
                {
                    "sample_id": sid,
                    "species": sp,
                    "family": family,
                    "shard": "000",
                    "index": i,
                    "betas": betas.tolist(),
                    "global_orient": matrix_to_axis_angle(torch.from_numpy(go)).tolist(),
                    "body_pose": body_pose.tolist(),
                    "transl": transl.tolist(),
                    "camera_model": "perspective",
                    "resolution": RES,
                    "fov_deg": 40.0,
                    "cam_scale": 0.0,
                    "cam_tx": 0.0,
                    "cam_ty": 0.0,
                    "keypoints_3d": kp3.reshape(-1).tolist(),
                    "keypoints_2d": kp2.reshape(-1).tolist(),
                    "keypoints_vis": (rng.random(26) > 0.2).tolist(),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "mask_area": 100,
                    "image_path": image,
                    "mask_path": mask,
                    "flagged": False,
                    "caption": f"a {sp} seen from the side",
                    "shape_backend": "prior",
                    "pose_backend": "procedural",
                    "generator": "render",
                    "provenance": '{"code_version": "git:abc"}',
                }
            )
    return pd.DataFrame(rows)
