import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from genzoo_assets.core.sampling.camera_model import view_rotation
from genzoo_assets.core.text import (
    CaptionInput,
    GeometricCaptioner,
    ModelDirectoryError,
    caption_partition,
    make_captioner,
)
from genzoo_assets.core.text.vlm import VLMCaptioner, one_sentence

from .tiny import save_tiny_llava


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_tiny_llava_end_to_end(llava_dir):
    captioner = make_captioner(
        "vlm", model_dir=llava_dir, device="cpu", dtype="float32", batch_size=2, max_new_tokens=8
    )
    assert isinstance(captioner, VLMCaptioner) and captioner.name == "vlm:" + llava_dir.name
    assert len(captioner.model_files["vlm"]) == 64
    rng = np.random.default_rng(0)
    items = [
        CaptionInput(
            view_rotation(30 * i, 0),
            np.eye(3),
            "standing",
            rng.integers(0, 256, (40 + i, 48, 3), dtype=np.uint8),
            "Lion",
        )
        for i in range(3)
    ]
    captions = captioner.caption_batch_with_backend(items)
    assert [b for _, b in captions] == [captioner.name] * 3  # these seeded weights always answer
    for text, _ in captions:  # random weights: gibberish, but one capitalised sentence
        assert text[0].isupper() and text[-1] in ".!?" and text.count(". ") == 0
    assert captioner.caption_batch(items) == [t for t, _ in captions]  # greedy: deterministic
    assert "Lion" in captioner.question("Lion")


def test_empty_answers_fall_back_to_the_geometric_caption(llava_dir, monkeypatch):
    captioner = VLMCaptioner(llava_dir, device="cpu", max_new_tokens=4)
    monkeypatch.setattr(
        captioner, "_generate", lambda chunk, offset: ["  ", "facing left. Standing."][: len(chunk)]
    )
    image = np.zeros((32, 32, 3), np.uint8)
    items = [
        CaptionInput(view_rotation(90, 0), np.eye(3), "standing", image, "Lion") for _ in range(2)
    ]
    (first, first_backend), (second, second_backend) = captioner.caption_batch_with_backend(items)
    assert (
        first_backend == f"geometric(fallback:{captioner.name})"
        and first == GeometricCaptioner().caption_batch(items[:1])[0]
    )
    assert (second, second_backend) == ("Facing left.", captioner.name)


def test_vlm_partition_loads_images_and_needs_them(llava_dir, tmp_path):
    from PIL import Image

    captioner = VLMCaptioner(llava_dir, device="cpu", max_new_tokens=4)
    rot = Rotation.from_matrix(view_rotation(90, 10)).as_rotvec().tolist()
    ids = ["lion.000.00000", "lion.000.00001"]
    rows = pd.DataFrame(
        {"sample_id": ids, "global_orient": [rot, rot], "posture": ["sitting", "lying"]}
    )
    seen = []

    def load(sample_id):
        seen.append(sample_id)
        return np.full((32, 32, 3), 128, np.uint8)

    out = caption_partition(rows, captioner, np.eye(3), load, species_name="Lion")
    assert seen == ids and out["caption"].map(lambda c: isinstance(c, str) and len(c) > 0).all()
    assert out["caption_backend"].str.contains("vlm:").all()

    # Without a loader the renders come from the merged control_renders rows' rgb_path.
    rows["rgb_path"] = [f"renders/lion/000/{sid}.rgb.png" for sid in ids]
    for rel in rows["rgb_path"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / rel)
    from_files = caption_partition(
        rows, captioner, np.eye(3), data_dir=tmp_path, species_name="Lion"
    )
    assert from_files.equals(out)
    (tmp_path / rows["rgb_path"][1]).unlink()
    with pytest.raises(FileNotFoundError, match="lion.000.00001"):
        caption_partition(rows, captioner, np.eye(3), data_dir=tmp_path)
    with pytest.raises(ValueError, match="needs the raw render image"):
        captioner.caption_batch([CaptionInput(np.eye(3), np.eye(3), "standing")])


def test_missing_and_incomplete_model_dirs(tmp_path, llava_dir):
    with pytest.raises(ModelDirectoryError, match="does not exist"):
        make_captioner("vlm", model_dir=tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((llava_dir / "config.json").read_text())
    with pytest.raises(
        ModelDirectoryError,
        match=r"missing: weights: no weight file .*; a tokenizer .*; an image processor config",
    ):
        VLMCaptioner(partial)
    with pytest.raises(
        ModelDirectoryError,
        match="VLM captioner model 'Qwen/Qwen2.5-VL-7B-Instruct' is neither a local folder nor a repo",
    ):
        make_captioner("vlm", device="cpu")  # an empty model_dir config: the default, not cached


def test_one_sentence():
    assert one_sentence('  "the dog is facing left. It is sitting."') == "The dog is facing left."
    assert one_sentence("Answer: facing\nright") == "Facing right."
    assert one_sentence("   ") == ""
