"""Text size limits: model output is cut at a word boundary and flagged, user text is refused."""

import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from genzoo_assets.core.errors import is_input_error
from genzoo_assets.core.taxonomy.mdd import MDDFormatError, load_mdd
from genzoo_assets.core.text import TokenBudget, caption_partition, prompt_partition
from genzoo_assets.core.text.prompters import FittedPrompt
from genzoo_assets.core.text_limits import (
    MAX_CAPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    TextTooLongError,
    truncate_at_word,
)


@pytest.mark.parametrize(
    "text, limit, expected",
    [
        ("a zebra standing in grass", 10, ("a zebra", True)),
        ("a zebra, standing", 8, ("a zebra", True)),
        ("a zebra", 7, ("a zebra", False)),
        ("a zebra standing", 7, ("a zebra", True)),  # the limit ends a word: kept whole
        ("abcdefghijklmnop", 5, ("abcde", True)),  # no space to cut at
    ],
)
def test_truncate_at_word(text, limit, expected):
    assert truncate_at_word(text, limit) == expected


class _Wordy:
    """A captioner (and prompter) that does not stop: ``words`` words per item."""

    name, model_files = "wordy", {}

    def __init__(self, words):
        self.words = words

    def caption_batch(self, items):
        return ["lion " * self.words for _ in items]

    def fitted_batch(self, items, budget):
        return [FittedPrompt("lion " * self.words, 77, self.name) for _ in items]


def _captions():
    rows = pd.DataFrame(
        {"sample_id": ["lion.000.00000", "lion.000.00001"], "global_orient": [[0.0, 0.0, 0.0]] * 2}
    )
    return rows, Rotation.identity().as_matrix()


def test_an_over_long_caption_is_cut_at_a_word_and_flagged():
    rows, canonical = _captions()
    long = caption_partition(rows, _Wordy(1000), canonical)
    assert long["caption_truncated"].tolist() == [True, True]
    assert all(len(c) <= MAX_CAPTION_CHARS and c.endswith("lion") for c in long["caption"])
    short = caption_partition(rows, _Wordy(3), canonical)
    assert short["caption_truncated"].tolist() == [False, False]


def test_an_over_long_prompt_is_cut_at_a_word_and_flagged():
    rows, canonical = _captions()
    captions = caption_partition(rows, _Wordy(3), canonical)
    species = {"key": "lion", "common_name": "Lion", "is_dog": False}
    prompts = prompt_partition(captions, species, _Wordy(2000), TokenBudget())
    assert prompts["prompt_truncated"].all()
    assert all(len(p) <= MAX_PROMPT_CHARS and p.endswith("lion") for p in prompts["prompt"])


@pytest.mark.parametrize("field", ["common_name", "breed"])
def test_an_over_long_species_name_is_refused_before_any_prompt(field):
    rows, canonical = _captions()
    captions = caption_partition(rows, _Wordy(3), canonical)
    species = {
        "key": "dog",
        "common_name": "Dog",
        "is_dog": True,
        field: "x" * (MAX_NAME_CHARS + 1),
    }
    with pytest.raises(TextTooLongError, match=f"species dog: {field} is 201 characters") as caught:
        prompt_partition(captions, species, _Wordy(3), TokenBudget())
    assert is_input_error(caught.value) and "\n" not in str(caught.value)


def test_an_mdd_name_over_the_limit_is_refused_naming_row_and_column(tmp_path):
    header = "sciName,mainCommonName,superorder,order,family,extinct,domestic"
    rows = ["Panthera_leo,Lion,Laurasiatheria,CARNIVORA,FELIDAE,0,0"]
    rows.append(
        f"Panthera_tigris,{'T' * (MAX_NAME_CHARS + 1)},Laurasiatheria,CARNIVORA,FELIDAE,0,0"
    )
    path = tmp_path / "mdd.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(MDDFormatError, match="data row 2, column 'mainCommonName'"):
        load_mdd(path)
