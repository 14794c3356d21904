import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.sampling.camera_model import view_rotation
from genzoo_assets.core.text import (
    CAPTION_COLUMNS,
    PROMPT_COLUMNS,
    TokenBudget,
    caption_partition,
    make_captioner,
    make_prompter,
    prompt_partition,
)
from genzoo_assets.core.text.partition import axis_angle_to_matrix


def _pose_rows(views, canonical):
    rows = []
    for i, (yaw, pitch, posture) in enumerate(views):
        r = view_rotation(yaw, pitch) @ canonical
        rows.append(
            {
                "sample_id": f"lion.000.{i:05d}",
                "global_orient": Rotation.from_matrix(r).as_rotvec().tolist(),
                "posture": posture,
            }
        )
    return pd.DataFrame(rows)


def test_axis_angle_helper_matches_scipy():
    aa = np.random.default_rng(0).normal(size=(6, 3))
    aa[0] = 0.0
    assert np.allclose(axis_angle_to_matrix(aa), Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)


def test_caption_then_prompt_partition():
    canonical = Rotation.from_euler("x", 90, degrees=True).as_matrix()
    rows = _pose_rows([(90, 0, "standing"), (-90, 40, "lying"), (180, -20, "walking")], canonical)
    captions = caption_partition(rows, make_captioner("geometric"), canonical)
    assert list(captions.columns) == CAPTION_COLUMNS and list(captions["sample_id"]) == list(
        rows["sample_id"]
    )
    assert "facing right" in captions["caption"][0] and "facing left" in captions["caption"][1]
    assert "from above" in captions["caption"][1] and "lying down" in captions["caption"][1]
    assert "away" in captions["caption"][2] and set(captions["caption_backend"]) == {"geometric"}

    species = {"key": "lion", "common_name": "Lion", "is_dog": False}
    budget = TokenBudget(max_tokens=60)
    prompts = prompt_partition(captions, species, make_prompter("template"), budget)
    assert list(prompts.columns) == PROMPT_COLUMNS and prompts["num_tokens"].dtype == np.int64
    assert (prompts["num_tokens"] <= 60).all() and set(prompts["prompt_backend"]) == {"template"}
    assert (
        "a Lion facing right" in prompts["prompt"][0]
        and "a Lion facing left" in prompts["prompt"][1]
    )
    assert prompt_partition(captions, species, make_prompter("template"), budget).equals(prompts)
    assert not prompt_partition(captions, species, make_prompter("template"), budget, base_seed=1)[
        "prompt"
    ].equals(prompts["prompt"])


def test_third_party_prompter_is_fitted_too():
    class Plain:
        name = "plain"
        model_files = {}

        def prompt_batch(self, items):
            return [
                f"a {i.species_common_name} {i.caption}, "
                + ", ".join(["on a long winding road"] * 20)
                for i in items
            ]

    captions = pd.DataFrame({"sample_id": ["x.000.00000"], "caption": ["facing left"]})
    out = prompt_partition(captions, {"common_name": "Tiger"}, Plain(), TokenBudget(max_tokens=30))
    assert out["num_tokens"][0] <= 30 and out["prompt"][0].startswith("A Tiger facing left")


def test_clear_errors():
    with pytest.raises(
        ValueError, match="unknown captioner backend 'molmo'; known: geometric, vlm"
    ):
        make_captioner("molmo")
    with pytest.raises(ValueError, match="unknown prompter backend 'qwen'; known: template, llm"):
        make_prompter("qwen")
    with pytest.raises(KeyError, match="global_orient"):
        caption_partition(
            pd.DataFrame({"sample_id": ["a"]}), make_captioner("geometric"), np.eye(3)
        )
    bad = pd.DataFrame({"sample_id": ["a"], "global_orient": [[0.0, 1.0]], "posture": ["standing"]})
    with pytest.raises(ValueError, match="global_orient must be 3"):
        caption_partition(bad, make_captioner("geometric"), np.eye(3))
    with pytest.raises(KeyError, match="common_name"):
        prompt_partition(
            pd.DataFrame({"sample_id": ["a"], "caption": ["x"]}),
            {"key": "zebra"},
            make_prompter("template"),
        )
    with pytest.raises(InputError, match="geometric"):
        make_captioner("geometric", model_dir="/x")
