import pytest

from genzoo_assets.core.text.budget import Clause, TokenBudget, estimate_tokens, join_clauses

from .tiny import word_tokenizer


def _clauses():
    return [
        Clause(
            "A photo of a Border Collie dog facing right, seen at eye level, standing",
            100,
            required=True,
        ),
        Clause("on a sandy beach by the sea", 60),
        Clause("photographed from a low angle", 50),
        Clause("at golden hour", 40),
        Clause("clear sky", 30),
        Clause("warm low-angle sunlight", 20),
        Clause("85mm lens, shallow depth of field", 10),
    ]


def test_estimate_is_conservative_and_counts_specials():
    assert estimate_tokens("") == 2
    assert estimate_tokens("a dog.") == 5  # <s> a dog . </s>
    assert estimate_tokens("Rhodesian") == 2 + 3


def test_everything_fits_in_a_large_budget():
    text, n = TokenBudget(max_tokens=512).fit(_clauses())
    assert text.endswith("shallow depth of field.") and n == estimate_tokens(text)


def test_lens_goes_first_then_lighting():
    full = join_clauses(_clauses())
    budget = TokenBudget(max_tokens=estimate_tokens(full) - 4)
    text, n = budget.fit(_clauses())
    assert n <= budget.max_tokens
    assert "warm low-angle sunlight" in text and "shallow depth of field" not in text
    assert "85mm lens" in text  # truncated at its comma rather than dropped
    smaller = TokenBudget(max_tokens=estimate_tokens(full) - 12)
    text, _ = smaller.fit(_clauses())
    assert "85mm" not in text and "sandy beach" in text


def test_with_a_real_tokenizer_and_required_clauses_are_never_cut():
    tok = word_tokenizer(with_vocab=False)  # one token per word or mark, plus <s> and </s>
    required = _clauses()[0].text
    budget = TokenBudget(tok, max_tokens=len(tok(required + ".")["input_ids"]) + 3)
    text, n = budget.fit(_clauses())
    assert n == len(tok(text)["input_ids"]) <= budget.max_tokens
    assert text.startswith(required) and "Border Collie" in text and "facing right" in text
    with pytest.raises(ValueError, match="required clauses"):
        TokenBudget(tok, max_tokens=8).fit(_clauses(), what="prompt for a Border Collie")


def test_bad_budget():
    with pytest.raises(ValueError, match="max_tokens"):
        TokenBudget(max_tokens=2)
