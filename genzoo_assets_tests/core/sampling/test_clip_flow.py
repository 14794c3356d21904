import os

import numpy as np
import pytest
import torch

from genzoo_assets.core.sampling.clip_text import (
    AttributesError,
    ClipTextEncoder,
    appearance_descriptions,
    appearance_templates,
    load_animal_attributes,
)
from genzoo_assets.core.sampling.flow import (
    ConditionalRealNVP,
    FlowCheckpointError,
    flow_config_from_state_dict,
    load_flow_checkpoint,
)
from genzoo_assets.core.sampling.shape_clip_flow import ClipFlowShapeSampler, ShapeResampleError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
NB, D = 12, 16
COLLIE = {"species": "border-collie", "common_name": "Border Collie", "family": "Canidae"}
GIRAFFE = {"species": "giraffe", "common_name": "giraffe", "family": "Giraffidae"}


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A tiny random CLIP text tower + word-level tokenizer, saved and reloaded from disk."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, PreTrainedTokenizerFast

    spec = appearance_templates()
    words = set("border collie giraffe".split())
    for t in spec["templates"]:
        words.update(t.replace(",", " ").split())
    for values in spec["attributes"].values():
        for v in values:
            words.update(v.replace(",", " ").split())
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for w in sorted(words):
        vocab[w] = len(vocab)
    vocab["</s>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="</s>"
    )
    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=40,
        projection_dim=D,
        eos_token_id=vocab["</s>"],
        pad_token_id=0,
        bos_token_id=1,
    )
    out = tmp_path_factory.mktemp("clip")
    CLIPTextModelWithProjection(config).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def _tiny_flow(mask_kind="learned", seed=0, num_inputs=NB):
    torch.manual_seed(seed)
    flow = ConditionalRealNVP(
        num_inputs, D, num_blocks=5, num_hidden=32, mask_kind=mask_kind, bottleneck=16
    )
    with torch.no_grad():  # keep the random flow's outputs moderate
        for layer in flow.couplings:
            layer.scale_net[-1].weight.mul_(0.1)
            layer.translate_net[-1].weight.mul_(0.1)
    return flow.eval()


def _attributes(path, animals=("Border Collie", "Giraffe")):
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(len(animals), D))
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    cov = np.stack([0.01 * np.eye(D)] * len(animals))
    np.savez(path, animals=np.array(animals), mean=mean, cov=cov)
    return path


def test_descriptions_are_distinct_and_name_the_species():
    d = appearance_descriptions("Border Collie", 40)
    assert len(d) == len(set(d)) == 40 and all("Border Collie" in t for t in d)
    assert d == appearance_descriptions("Border Collie", 40)


def test_clip_encoder_embeds_unit_vectors(clip_dir):
    enc = ClipTextEncoder(clip_dir)
    e = enc.embed(appearance_descriptions("giraffe", 10))
    assert e.shape == (10, D) and np.allclose(np.linalg.norm(e, axis=1), 1.0)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ClipTextEncoder(clip_dir / "nowhere")


def test_clip_flow_from_text_shapes_and_determinism(clip_dir):
    s = ClipFlowShapeSampler(
        NB, clip_dir=clip_dir, flow=_tiny_flow(), sigma=0.1, num_descriptions=24
    )
    b1 = [s.sample(COLLIE, np.random.default_rng(i)) for i in range(4)]
    b2 = [s.sample(COLLIE, np.random.default_rng(i)) for i in range(4)]
    assert all(b.shape == (NB,) and np.isfinite(b).all() and np.abs(b).max() <= 10 for b in b1)
    assert all(np.array_equal(x, y) for x, y in zip(b1, b2))
    assert not np.array_equal(b1[0], b1[1])
    g_collie, g_giraffe = s.species_gaussian(COLLIE), s.species_gaussian(GIRAFFE)
    assert not np.allclose(g_collie.mean, g_giraffe.mean)
    assert "clip_text" in s.model_files


def test_alternating_flow_is_invertible():
    flow = _tiny_flow("alternating")
    cond = torch.nn.functional.normalize(torch.randn(8, D), dim=-1)
    z = torch.randn(8, NB)
    x = flow.sample(cond, z)
    z_back, _ = flow(x, cond, "direct")
    assert torch.allclose(z_back, z, atol=1e-4)
    assert torch.isfinite(flow.log_prob(x, cond)).all()


def test_attributes_file_gives_species_gaussians(tmp_path):
    path = _attributes(tmp_path / "animal_attributes.npz")
    s = ClipFlowShapeSampler(NB, attributes=path, flow=_tiny_flow(), sigma=0.1)
    b = s.sample(
        {"common_name": "border collie"}, np.random.default_rng(0)
    )  # GenZoo title-cases names
    assert b.shape == (NB,)
    with pytest.raises(AttributesError, match=r"'Okapi'.*animal_attributes\.npz"):
        s.sample({"species": "okapi", "common_name": "Okapi"}, np.random.default_rng(0))


def test_attributes_file_errors(tmp_path):
    with pytest.raises(AttributesError, match="does not exist"):
        load_animal_attributes(tmp_path / "missing.npz")
    np.savez(tmp_path / "a.npz", animals=np.array(["x"]), mean=np.zeros((1, D)))
    with pytest.raises(AttributesError, match=r"lacks key\(s\) \['cov'\]"):
        load_animal_attributes(tmp_path / "a.npz")
    np.savez(
        tmp_path / "b.npz",
        animals=np.array(["x", "y"]),
        mean=np.zeros((2, D)),
        cov=np.zeros((2, D, D - 1)),
    )
    with pytest.raises(AttributesError, match="'cov' must be"):
        load_animal_attributes(tmp_path / "b.npz")
    np.savez(
        tmp_path / "c.npz",
        animals=np.array(["x"]),
        mean=np.full((1, D), np.nan),
        cov=np.zeros((1, D, D)),
    )
    with pytest.raises(AttributesError, match="NaN"):
        load_animal_attributes(tmp_path / "c.npz")


def test_implausible_betas_are_resampled_then_rejected(tmp_path):
    path = _attributes(tmp_path / "animal_attributes.npz")
    flow = _tiny_flow("alternating", num_inputs=2)
    with torch.no_grad():
        for layer in flow.couplings:  # identity couplings: betas = noise * prod sqrt(running_var)
            for p in layer.parameters():
                p.zero_()
        for bn in flow.batch_norms:
            bn.running_var.fill_(5.0 ** (2 / 5))  # five layers: std 5 overall
    s = ClipFlowShapeSampler(2, attributes=path, flow=flow, sigma=1.0)
    tries = []
    for i in range(40):
        b = s.sample(COLLIE, np.random.default_rng(i))
        assert np.abs(b).max() <= 10
        tries.append(s.last_tries)
    assert max(tries) > 1  # some draws needed a redraw
    for bn in flow.batch_norms:
        bn.running_var.fill_(1e4**2)
    with pytest.raises(ShapeResampleError, match=r"'border-collie': 10 flow samples"):
        s.sample(COLLIE, np.random.default_rng(0))


def test_checkpoint_roundtrip_and_errors(tmp_path):
    flow = _tiny_flow()
    wrapped = {f"object_params_predictor.pred_layer.{k}": v for k, v in flow.state_dict().items()}
    torch.save(wrapped, tmp_path / "awol.pth")
    loaded = load_flow_checkpoint(tmp_path / "awol.pth", expected_num_betas=NB)
    assert loaded.config == flow.config
    cond, z = torch.nn.functional.normalize(torch.randn(3, D), dim=-1), torch.randn(3, NB)
    assert torch.equal(loaded.sample(cond, z), flow.sample(cond, z))
    s = ClipFlowShapeSampler(
        NB,
        flow_checkpoint=tmp_path / "awol.pth",
        attributes=_attributes(tmp_path / "attr.npz"),
        sigma=0.1,
    )
    assert set(s.model_files) == {"flow", "animal_attributes"}

    with pytest.raises(FlowCheckpointError, match="does not exist"):
        load_flow_checkpoint(tmp_path / "none.pth")
    with pytest.raises(
        FlowCheckpointError, match="expected_num_betas|145 is required|num_inputs=12"
    ):
        load_flow_checkpoint(tmp_path / "awol.pth", expected_num_betas=145)
    state = flow.state_dict()
    del state["4.scale_net.2.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(FlowCheckpointError, match=r"missing keys \['4.scale_net.2.weight'\]"):
        load_flow_checkpoint(tmp_path / "missing.pth")
    state = flow.state_dict()
    state["3.beta"] = torch.zeros(NB + 1)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(FlowCheckpointError, match=r"3.beta has shape \(13,\)"):
        load_flow_checkpoint(tmp_path / "shape.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(FlowCheckpointError, match="cannot be read"):
        load_flow_checkpoint(tmp_path / "junk.pth")


def test_default_flow_has_genzoo_awol_layout():
    """Key names and shapes GenZoo's awol.py (train_mask=True, compression) gives the released checkpoint."""
    with torch.device("meta"):
        flow = ConditionalRealNVP()
    state = flow.state_dict()
    assert state["0.scale_net.0.weight"].shape == (1024, 145 + 512)
    assert state["0.scale_net.2.weight"].shape == (512, 1024) and state[
        "8.translate_net.6.weight"
    ].shape == (145, 1024)
    assert state["0.mask.mask"].shape == (145,) and state["9.running_var"].shape == (145,)
    assert len([k for k in state if k.endswith("log_gamma")]) == 5
    assert "0.mask" not in state and not any(k.startswith("10.") for k in state)
    assert flow_config_from_state_dict(state) == flow.config
