"""Splitting long answers into messages: boundaries, code fences, characters, stability."""

from __future__ import annotations

import random
import unicodedata

import pytest

from core.reply.split import MIN_MESSAGE_CHARS, close_fence, split_message


def fences_balanced(part: str) -> bool:
    return close_fence(part) == part


def words(count: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]) for _ in range(count))


def mixed_markdown(seed: int) -> str:
    """Paragraphs, lists, code blocks with languages, emoji and accents: what a model writes."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(rng.randint(6, 14)):
        kind = rng.choice(["para", "code", "list", "emoji"])
        if kind == "para":
            blocks.append(words(rng.randint(5, 60), rng.random()))
        elif kind == "code":
            lang = rng.choice(["python", "js", "", "rust"])
            body = "\n".join(f"    line_{i} = compute({i}, 'é')" for i in range(rng.randint(2, 25)))
            blocks.append(f"```{lang}\n{body}\n```")
        elif kind == "list":
            blocks.append("\n".join(f"- item {i}: {words(rng.randint(1, 8), i)}" for i in range(5)))
        else:
            blocks.append(
                " ".join(rng.choice(["👍🏽", "🇫🇷", "👨‍👩‍👧", "e\u0301", "日本語", "😀"]) for _ in range(40))
            )
    return "\n\n".join(blocks)


def test_short_text_is_one_part_and_empty_text_none():
    assert split_message("Hello **world**", 100) == ["Hello **world**"]
    assert split_message("", 100) == []
    assert split_message("  \n\n ", 100) == []


def test_limit_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least"):
        split_message("text", MIN_MESSAGE_CHARS - 1)


def test_prefers_paragraph_breaks():
    first, second = words(12, 1), words(12, 2)
    text = f"{first}\n\n{second}"
    parts = split_message(text, len(first) + 20)
    assert parts == [first, second]


def test_falls_back_to_line_then_word_boundaries():
    lines = [words(8, i) for i in range(6)]
    parts = split_message("\n".join(lines), 120)
    assert all(len(p) <= 120 for p in parts)
    assert "\n".join(parts).split("\n") == lines  # every cut fell on a line break

    one_line = words(80)
    parts = split_message(one_line, 100)
    assert " ".join(parts) == one_line  # every cut fell on a space
    assert all(len(p) <= 100 for p in parts)


def test_unbroken_text_is_cut_hard_at_the_limit():
    parts = split_message("x" * 250, 100)
    assert parts == ["x" * 100, "x" * 100, "x" * 50]


def test_code_block_is_closed_and_reopened_with_its_language():
    code = "\n".join(f"print({i})  # step {i}" for i in range(40))
    text = f"Here is the script:\n\n```python\n{code}\n```\n\nThat is all."
    parts = split_message(text, 200)
    assert len(parts) > 2
    assert all(len(p) <= 200 for p in parts)
    assert all(fences_balanced(p) for p in parts)
    for part in parts[1:]:
        if "print(" in part:
            assert part.startswith("```python\n")
    rejoined = [line for p in parts for line in p.split("\n") if line.startswith("print(")]
    assert rejoined == code.split("\n")  # no code line lost, duplicated or cut


def test_split_before_a_code_block_rather_than_inside_when_it_fits():
    intro = words(10)
    code = "```js\n" + "\n".join(f"let v{i} = {i};" for i in range(8)) + "\n```"
    parts = split_message(f"{intro}\n\n{code}", len(code) + 10)
    assert parts == [intro, code]


def test_tilde_fences_and_inline_triple_backticks():
    inline = "Use ```code``` inline. " * 10
    parts = split_message(inline, 80)
    assert not any("\n" in p for p in parts)  # no fence was closed or reopened: none was opened
    assert " ".join(parts) == inline.strip()

    tilde = "~~~sh\n" + "\n".join(f"echo {i}" for i in range(30)) + "\n~~~"
    parts = split_message(tilde, 80)
    assert all(p.startswith("~~~sh\n") and p.endswith("\n~~~") for p in parts)


def test_a_code_line_longer_than_a_message_is_cut_inside_the_fence():
    text = "```\n" + "y" * 300 + "\n```"
    parts = split_message(text, 100)
    assert all(len(p) <= 100 and fences_balanced(p) for p in parts)
    assert "".join(p.removeprefix("```\n").removesuffix("\n```") for p in parts) == "y" * 300


@pytest.mark.parametrize(
    "unit",
    [
        "👍🏽",
        "🇫🇷",
        "👨‍👩‍👧‍👦",
        "e\u0301\u0302",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
        "日",
        "❤️",
    ],
)
def test_never_splits_a_user_perceived_character(unit: str):
    text = unit * 200  # no spaces: every cut is a hard cut
    for limit in (64, 65, 66, 67, 101):
        parts = split_message(text, limit)
        assert all(len(p) <= limit for p in parts)
        assert all(p == unit * (len(p) // len(unit)) for p in parts), f"{unit!r} split at {limit}"
        assert "".join(parts) == text


def test_surrogate_pairs_are_never_split():
    pair = "\ud83d\ude00"  # a lone-surrogate pair, as a badly decoded string may hold
    text = pair * 100
    for limit in (64, 65, 99):
        parts = split_message(text, limit)
        assert all(len(p) % 2 == 0 for p in parts)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limit", [64, 150, 500, 2000])
def test_every_part_fits_and_code_fences_balance(seed: int, limit: int):
    text = mixed_markdown(seed)
    parts = split_message(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert all(fences_balanced(p) for p in parts)
    assert all(p.strip() for p in parts)
    # Nothing is lost: every non-fence word of the text is still there, in order.
    tokens = [t for t in text.split() if not t.startswith("```")]
    assert [t for p in parts for t in p.split() if not t.startswith("```")] == tokens


@pytest.mark.parametrize("seed", range(6))
def test_growing_text_keeps_earlier_parts(seed: int):
    text = mixed_markdown(seed)
    final = split_message(text, 150)
    rng = random.Random(seed)
    length = 0
    while length < len(text):
        length = min(len(text), length + rng.randint(1, 40))
        parts = split_message(text[:length], 150)
        assert parts[:-1] == final[: len(parts) - 1], f"an earlier part changed at {length}"


def test_close_fence_closes_only_an_open_block():
    assert close_fence("a\n```py\nx = 1") == "a\n```py\nx = 1\n```"
    assert close_fence("a\n```py\nx = 1\n```") == "a\n```py\nx = 1\n```"
    assert close_fence("plain") == "plain"


def test_no_part_starts_with_a_combining_mark():
    text = ("e\u0301" * 3 + " ") * 200
    for part in split_message(text, 97):
        assert not unicodedata.combining(part[0])
