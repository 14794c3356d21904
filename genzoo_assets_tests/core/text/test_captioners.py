import numpy as np
import pytest

from genzoo_assets.core.sampling.camera_model import view_rotation
from genzoo_assets.core.text.captioners import (
    Captioner,
    CaptionInput,
    GeometricCaptioner,
    describe_view,
    pitch_phrase,
    posture_phrase,
    yaw_phrase,
)


def _rot_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _caption(yaw, pitch, posture="standing", canonical=np.eye(3)):
    # canonical maps model -> canonical frame; the posed model->camera rotation is R_view @ C.
    item = CaptionInput(view_rotation(yaw, pitch) @ canonical, canonical, posture)
    return GeometricCaptioner().caption_batch([item])[0]


@pytest.mark.parametrize(
    "yaw,must,must_not",
    [
        (0, ["towards the camera"], ["left", "right", "away", "three-quarter"]),
        (45, ["three-quarter", "front-right"], ["left", "away"]),
        (-45, ["three-quarter", "front-left"], ["right", "away"]),
        (90, ["facing right"], ["left", "three-quarter", "towards"]),
        (-90, ["facing left"], ["right", "three-quarter", "towards"]),
        (135, ["three-quarter", "rear-right"], ["left", "towards"]),
        (-135, ["three-quarter", "rear-left"], ["right", "towards"]),
        (180, ["away"], ["left", "right", "three-quarter", "towards"]),
    ],
)
def test_known_yaws_give_the_right_words(yaw, must, must_not):
    # A SMAL-like canonical rotation (model frame differs from the canonical frame) must not matter.
    canonical = _rot_z(90) @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    text = _caption(yaw, 0, canonical=canonical)
    assert text.startswith("The animal is ") and text.endswith(".")
    for word in must:
        assert word in text, (yaw, text)
    for word in must_not:
        assert word not in text, (yaw, text)
    assert "eye level" in text


@pytest.mark.parametrize(
    "pitch,phrase",
    [
        (0, "at eye level"),
        (20, "slightly from above"),
        (50, "seen from above"),
        (80, "directly above"),
        (-20, "slightly from below"),
        (-50, "seen from below"),
    ],
)
def test_pitches(pitch, phrase):
    text = _caption(90, pitch)
    assert phrase in text and "facing right" in text
    assert ("above" in text) == (pitch > 10) and ("below" in text) == (pitch < -10)


def test_example_sentence_and_postures():
    assert (
        describe_view(90, 20, "standing")
        == "The animal is facing right, seen slightly from above, standing."
    )
    assert _caption(-90, 0, "lying").endswith("lying down.")
    assert _caption(0, 0, "sitting").endswith("sitting.")
    assert _caption(0, 0, "trotting").endswith("trotting.")
    assert posture_phrase("lying_on_side") == "lying on its side"
    assert posture_phrase("play_bow") == "play bow"
    assert _caption(0, 0, "") == "The animal is facing towards the camera, seen at eye level."


def test_thresholds_are_symmetric_and_bounded():
    assert yaw_phrase(22.4) == "facing towards the camera" and "three-quarter" in yaw_phrase(22.6)
    assert yaw_phrase(-100) == "facing left" and yaw_phrase(179.9) == yaw_phrase(-179.9)
    assert pitch_phrase(9.9) == "seen at eye level"


def test_protocol_and_bad_rotation():
    cap = GeometricCaptioner()
    assert isinstance(cap, Captioner) and cap.name == "geometric" and cap.model_files == {}
    with pytest.raises(ValueError, match="global_orient"):
        cap.caption_batch([CaptionInput(np.eye(2), np.eye(3), "standing")])
