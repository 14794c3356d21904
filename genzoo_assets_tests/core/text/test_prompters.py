import pytest

from genzoo_assets.core.text.budget import TokenBudget
from genzoo_assets.core.text.prompters import (
    Prompter,
    PromptInput,
    TemplatePrompter,
    orientation_phrase,
    subject_phrase,
)
from genzoo_assets.core.text.vocabulary import load_data, view_class

from .tiny import word_tokenizer

CAPTION = (
    "The animal is in a three-quarter view from the front-left, seen slightly from below, sitting."
)


def _item(seed, name="African elephant", is_dog=False, breed=None, caption=CAPTION):
    return PromptInput(name, is_dog, breed, caption, seed)


def test_deterministic_per_seed_and_different_across_seeds():
    prompter = TemplatePrompter()
    assert isinstance(prompter, Prompter) and prompter.name == "template"
    first = prompter.prompt_batch([_item(s) for s in range(12)])
    again = TemplatePrompter().prompt_batch([_item(s) for s in reversed(range(12))])[::-1]
    assert first == again  # each prompt depends on its own seed only, not on batch order
    assert len(set(first)) >= 10


def test_prompts_name_the_species_and_keep_the_orientation():
    orientation = "in a three-quarter view from the front-left, seen slightly from below, sitting"
    for text in TemplatePrompter().prompt_batch([_item(s) for s in range(20)]):
        assert "an African elephant " + orientation in text
        assert (
            "from a high vantage point" not in text and "looking down" not in text
        )  # agrees with "below"


def test_dog_breeds_and_articles():
    assert subject_phrase(_item(0, "Dog", True, "Border Collie")) == "a Border Collie dog"
    assert subject_phrase(_item(0, "Dog", True, "Irish Wolfhound")) == "an Irish Wolfhound dog"
    assert subject_phrase(_item(0, "Dog", True, None)) == "a Dog"
    assert subject_phrase(_item(0, "Lion")) == "a Lion"
    with pytest.raises(ValueError, match="species_common_name"):
        subject_phrase(_item(0, " "))


def test_orientation_phrase_strips_the_subject():
    assert (
        orientation_phrase("The animal is facing right, seen at eye level.")
        == "facing right, seen at eye level"
    )
    assert orientation_phrase("The dog appears to be facing left.") == "facing left"
    assert orientation_phrase("Facing away from the camera.") == "facing away from the camera"
    assert view_class(CAPTION) == "below" and view_class("seen from directly above") == "above"


@pytest.mark.parametrize("max_tokens", [77, 40])
def test_within_budget_with_the_estimate(max_tokens):
    budget = TokenBudget(max_tokens=max_tokens)
    for f in TemplatePrompter().fitted_batch(
        [_item(s, "Dog", True, "Nova Scotia Duck Tolling Retriever") for s in range(10)], budget
    ):
        assert f.num_tokens == budget.count(f.text) <= max_tokens
        assert (
            "Nova Scotia Duck Tolling Retriever dog in a three-quarter view from the front-left"
            in f.text
        )


def test_within_budget_with_a_tokenizer():
    tok = word_tokenizer(with_vocab=False)
    budget = TokenBudget(tok, max_tokens=36)
    texts = TemplatePrompter(budget).prompt_batch([_item(s) for s in range(10)])
    for text in texts:
        assert (
            len(tok(text)["input_ids"]) <= 36
            and "African elephant" in text
            and "front-left" in text
        )
    assert any(
        ", " in t.split("sitting", 1)[1] for t in texts
    )  # the budget keeps some setting words


def test_vocabulary_is_generous_and_every_template_has_the_required_slots():
    vocab = load_data("photo_vocabulary.yaml")
    assert len(vocab["scenes"]["dog"]) >= 15 and len(vocab["scenes"]["wild"]) >= 15
    assert len(vocab["lenses"]) >= 8 and len(vocab["conditions"]) >= 5
    for template in vocab["templates"]:
        assert "{subject}" in template[0] and "{orientation}" in template[0]
    assert "{animal}" in load_data("instructions.yaml")["vlm_question"]
