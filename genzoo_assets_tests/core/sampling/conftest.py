import numpy as np
import pytest


@pytest.fixture(scope="session")
def standing_vertices(body_model):
    """A few posed meshes (canonical frame) of the procedural model, one per posture."""
    import torch

    from genzoo_assets.core.sampling.pose_procedural import ProceduralPoseSampler

    sampler = ProceduralPoseSampler(body_model)
    rng = np.random.default_rng(0)
    draws = [sampler.sample(rng) for _ in range(6)]
    go = np.stack([np.eye(3) if o is None else o for o, _, _ in draws])
    out = body_model(
        torch.zeros(6, body_model.num_betas),
        torch.tensor(go, dtype=torch.float32),
        torch.tensor(np.stack([d[1] for d in draws]), dtype=torch.float32),
    )
    return out.vertices.double().numpy()
