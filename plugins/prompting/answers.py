"""Final-answer extraction from reasoning text, normalisation and majority voting."""

from __future__ import annotations

import re
from collections import Counter

# Explicit markers, strongest first; the last match in the text wins.
_MARKERS = (
    re.compile(r"^\s*(?:\*\*)?(?:final\s+)?answer(?:\*\*)?\s*[:=]\s*(?:\*\*)?(.+?)\s*$", re.I | re.M),
    # "the answer is 42." (short captures only: not "the answer is how many muffins ...")
    re.compile(r"(?:the\s+)?(?:final\s+)?answer\s+is\s*[:=]?\s*([^\n]{1,30}?)\s*(?:\.\s|\.?$)", re.I | re.M),
    re.compile(r"^\s*####\s*(.+?)\s*$", re.M),
    re.compile(r"\\boxed\{([^{}]+)\}"),
)
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


_WRAPPERS = re.compile(r"\\boxed\{([^{}]*)\}|<answer>(.*?)</answer>", re.S)


def _unwrap(answer: str) -> str:
    """'\\[ \\boxed{42} \\]' or '<answer>42</answer>' -> '42'."""
    inner = _WRAPPERS.search(answer)
    if inner:
        answer = inner.group(1) if inner.group(1) is not None else inner.group(2)
    answer = re.sub(r"\\[\[\]()]|\$\$", " ", answer)
    answer = re.sub(r"^\s*(?:final\s+)?answer\s*[:=]\s*", "", answer, flags=re.I)  # "Answer: Answer: 7"
    return answer.strip().strip("*").strip()


def extract_answer(text: str) -> tuple[str, bool]:
    """(answer, explicit): the final answer and whether an explicit marker gave it.

    Falls back to the last number in the text, then the last non-empty line.
    """
    for pattern in _MARKERS:
        found = pattern.findall(text)
        if found:
            return _unwrap(found[-1]), True
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1], False
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else ""), False


_ANSWER_LINE = re.compile(r"^\s*(?:\*\*)?(?:final\s+)?answer(?:\*\*)?\s*[:=].*\S.*\n", re.I | re.M)


def has_answer_line(text: str) -> bool:
    """True once the text holds a finished 'Answer: ...' line (reasoning may stop there)."""
    return bool(_ANSWER_LINE.search(text))


def normalize(answer: str) -> str:
    """A form in which equal answers compare equal: '$1,200.00 dollars' -> '1200'."""
    text = answer.strip().lower()
    number = _NUMBER.search(text)
    # An answer that leads with a number ("26 pens", "$4.50") is that number.
    if number and re.fullmatch(r"[^a-z0-9-]*-?\$?\d[\d,]*(?:\.\d+)?\s*[a-z%$ .]*", text):
        value = number.group(0).replace("$", "").replace(",", "")
        try:
            as_float = float(value)
        except ValueError:
            return value
        return str(int(as_float)) if as_float == int(as_float) else f"{as_float:g}"
    text = re.sub(r"[^\w\s-]", "", text)
    return " ".join(text.split())


def answers_match(predicted: str, expected: str) -> bool:
    return normalize(predicted) == normalize(expected) != ""


def majority_vote(answers: list[str]) -> tuple[str, dict[str, int], float]:
    """(winner, votes by normalised answer, agreement = winner's share).

    Ties go to the answer seen first; empty answers do not vote.
    """
    normalized = [normalize(a) for a in answers]
    votes = Counter(a for a in normalized if a)
    if not votes:
        return "", {}, 0.0
    order = {a: i for i, a in reversed(list(enumerate(normalized)))}
    winner = max(votes, key=lambda a: (votes[a], -order[a]))
    return winner, dict(votes.most_common()), votes[winner] / len(answers)
