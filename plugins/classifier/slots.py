"""Slots pulled out of free text with rules, per intent.

image_sample / image_train: model ("vae" | "gan" | "diffusion"), n (image
count), epochs, label (a digit 0-9: "draw 16 sevens"); ingest: path;
classify: text (the quoted or post-colon part, when there is one).
"""

from __future__ import annotations

import re
from typing import Any

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "sixty-four": 64, "hundred": 100,
    "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "a dozen": 12, "dozen": 12,
}
DIGIT_NAMES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
# Plural digit names: "sevens", "sixes", "7s", "7's".
DIGIT_PLURALS = {"zeros": 0, "zeroes": 0, "ones": 1, "twos": 2, "threes": 3, "fours": 4, "fives": 5,
                 "sixes": 6, "sevens": 7, "eights": 8, "nines": 9}

MODEL_PATTERNS = (
    ("diffusion", r"\b(diffusion|ddpm|denois\w*|u-?net)\b"),
    ("gan", r"\b(gans?|adversarial|dcgan|generator and (the )?discriminator|discriminator)\b"),
    ("vae", r"\b(vaes?|variational|auto-?encoders?)\b"),
)
NUMBER = r"(\d{1,4}|" + "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True)) + r")"
COUNT_NOUNS = r"(images?|imgs?|pics?|pictures?|samples?|digits?|numbers?|outputs?|examples?|drawings?|" \
              r"fakes?|fake digits|new digits|handwritten digits|mnist digits|random images)"
MAX_IMAGES = 256
MAX_EPOCHS = 1000


def _number(token: str) -> int | None:
    token = token.lower().strip()
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)


def find_model(text: str) -> str | None:
    lowered = text.lower()
    hits = []
    for name, pattern in MODEL_PATTERNS:
        match = re.search(pattern, lowered)
        if match:
            hits.append((match.start(), name))
    return min(hits)[1] if hits else None


def find_epochs(text: str) -> int | None:
    lowered = text.lower()
    match = re.search(NUMBER + r"\s*(more\s+|additional\s+|extra\s+)?(-\s*)?epochs?\b", lowered) \
        or re.search(r"\bepochs?\s*[:=]?\s*(\d{1,4})\b", lowered)
    if match is None:
        if re.search(r"\b(an|one|a single)\s+epoch\b", lowered):
            return 1
        return None
    value = _number(match.group(1))
    return value if value and 0 < value <= MAX_EPOCHS else None


def find_label(text: str) -> int | None:
    """The digit the user wants drawn: "sevens", "7s", "digit 4", "a 3", "of the number 2"."""
    lowered = text.lower()
    match = re.search(r"\b(" + "|".join(DIGIT_PLURALS) + r")\b", lowered)
    if match:
        return DIGIT_PLURALS[match.group(1)]
    match = re.search(r"\b([0-9])(?:'s|s)\b", lowered)
    if match:
        return int(match.group(1))
    match = re.search(r"\b(?:digit|number|numeral)\s+(?:of\s+)?([0-9]|" + "|".join(DIGIT_NAMES) + r")\b", lowered)
    if match:
        token = match.group(1)
        return int(token) if token.isdigit() else DIGIT_NAMES[token]
    match = re.search(r"\b(?:draw|paint|make|generate|show|sample|render|create)(?: me)?\s+(?:a|an)\s+"
                      r"([0-9]|" + "|".join(DIGIT_NAMES) + r")\b(?!\s*" + COUNT_NOUNS + r")", lowered)
    if match:
        token = match.group(1)
        return int(token) if token.isdigit() else DIGIT_NAMES[token]
    match = re.search(r"\b(?:picture|image|drawing)s? of (?:a |an |the )?(?:handwritten )?"
                      r"([0-9]|" + "|".join(DIGIT_NAMES) + r")\b", lowered)
    if match:
        token = match.group(1)
        return int(token) if token.isdigit() else DIGIT_NAMES[token]
    return None


def find_count(text: str) -> int | None:
    """How many images: "9 gan images", "16 sevens", "a dozen samples", "like 10 of them"."""
    lowered = text.lower()
    model_words = r"(?:(?:gan|vae|diffusion|ddpm|new|fake|random|generated|handwritten|mnist|more)\s+)*"
    patterns = (
        NUMBER + r"\s+" + model_words + COUNT_NOUNS + r"\b",
        NUMBER + r"\s+(" + "|".join(DIGIT_PLURALS) + r"|[0-9](?:'s|s))\b",
        r"\b(?:like|about|around)?\s*" + NUMBER + r"\s+of them\b",
        r"\b(?:n|count|num)\s*[:=]\s*(\d{1,4})\b",
        r"\b(?:grid of|batch of)\s+" + NUMBER + r"\b",
        r"\b(?:sample|generate|draw|render|produce|make|output|create|show)(?: me)?\s+" + NUMBER + r"\b(?!\s*(?:epochs?|'s|s\b))",
    )
    for pattern in patterns:
        match = re.search(pattern, lowered)
        if match:
            value = _number(match.group(1))
            if value and 0 < value <= MAX_IMAGES:
                return value
    return None


PATH_PATTERN = re.compile(
    r"""(?:"([^"]+)"|'([^']+)'|"""  # quoted
    r"""((?:https?://|~/|\.{1,2}/|/)\S+|"""  # absolute, home, relative or URL
    r"""[\w.-]+(?:/[\w.-]+)*/?\.?(?:[\w-]+\.(?:md|markdown|txt|pdf|html?|rst|csv|json|jsonl))\b|"""  # file.ext
    r"""[\w.-]+(?:/[\w.-]+)+/?))""",  # dir/sub
    re.IGNORECASE)


def find_path(text: str) -> str | None:
    for match in PATH_PATTERN.finditer(text):
        value = next(g for g in match.groups() if g)
        value = value.rstrip(".,;:)!?")
        if value and not value.lower().startswith(("and/", "or/")):
            return value
    return None


def find_text_to_classify(text: str) -> str | None:
    """The part of "what's the sentiment of 'I loved it'" that should be classified."""
    quoted = re.findall(r"[\"“]([^\"”]{2,})[\"”]", text) \
        + re.findall(r"(?:^|\s)'([^']{2,})'(?=$|[\s.,!?;:])", text)
    if quoted:
        return max(quoted, key=len).strip()
    if ":" in text:
        after = text.split(":", 1)[1].strip()
        if after:
            return after
    return None


def extract(intent: str, text: str) -> dict[str, Any]:
    slots: dict[str, Any] = {}
    if intent in ("image_sample", "image_train"):
        model = find_model(text)
        if model:
            slots["model"] = model
    if intent == "image_sample":
        label = find_label(text)
        count = find_count(text)
        if label is not None:
            slots["label"] = label
        if count is not None and not (label is not None and count == label and not re.search(r"\d", text)):
            slots["n"] = count
    elif intent == "image_train":
        epochs = find_epochs(text)
        if epochs is not None:
            slots["epochs"] = epochs
    elif intent == "ingest":
        path = find_path(text)
        if path:
            slots["path"] = path
    elif intent == "classify":
        target = find_text_to_classify(text)
        if target:
            slots["text"] = target
    return slots
