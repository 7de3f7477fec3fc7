"""Follow-up questions: does a message lean on the conversation, and what does it ask?

`refers_back(text)` says whether a message cannot be understood on its own: a
pronoun with nothing before it to point at ("why is it unstable?"), an ordinal
("and the second one?"), an ellipsis ("why?", "what about GANs?", "an
example?"). A self-contained question returns False, so a change of topic does
not drag the old topic along.

`rewrite(text, history)` turns such a follow-up into a self-contained question
with rules only (no model): the subject of the previous question replaces the
pronoun, an ordinal picks the item from the previous reply's enumeration, and
an ellipsis is completed with the previous question. `resolve()` does the same
and can ask a language model instead (`llm_rewrite`), keeping the rule-based
result whenever the model's answer does not look like one question.

Core module: standard library only, so routers and front ends can import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

Turn = dict  # {"role": "user" | "assistant", "content": str}

WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")

# Words that say nothing about the topic: question words, auxiliaries, pronouns,
# fillers and the verbs of a request ("explain", "show"). A question made only
# of these (plus a pronoun) cannot stand alone.
FUNCTION_WORDS = frozenset("""
a an the and or but so also too then than of to in on at by for from with without into onto about as
is are was were be been being am do does did doing done have has had having can could should would will
shall may might must what which who whom whose how why when where whether if i me my we us our you your
he she him her his hers one ones there here not no yes just only very really please again more most less
any some each every all both either neither other another else such same own okay ok well
explain describe tell give show say says said mean means meaning meant define elaborate expand clarify
example examples instance detail details simpler simply exactly instead anyway though yet still
work works working happen happens matter matters help helps go goes continue look looks like
get gets need needs needed make makes made use uses used using want know understand fix solve
thing things part parts way ways step steps case cases kind kinds bit lot let lets
code python snippet words term terms simple short shorter name few list
""".split())

PRONOUNS = frozenset("it its itself they them their theirs themselves this that these those he she him her".split())
DEMONSTRATIVES = frozenset("this that these those".split())
ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1, "former": 0, "latter": -1}
# "The second one", "the latter", "the other one", "the second term": an item named before.
ORDINAL_REF = re.compile(
    r"\b(?:the\s+)?(first|second|third|fourth|fifth|last|former|latter|other)"
    # "the first one" is always a reference, whatever follows ("what does the first one output?") ...
    r"(?:\s+(one|ones)\b(?!\s+of\s+(?:the\s+|a\s+|an\s+)?(?!them\b|these\b|those\b|it\b)[A-Za-z])|"
    # ... "the second term" only when no new noun or "of X" follows it ("the first layer of the decoder" is not)
    r"(?:\s+(term|terms|part|item|option|step|point|component|idea|thing|method|technique|approach))?\b"
    r"(?!\s+(?:of|in|from)\s+(?:the\s+|a\s+|an\s+)?(?!them\b|these\b|those\b|it\b)[A-Za-z])"
    r"(?!\s+(?!(?:one|ones|is|are|was|were|do|does|did|can|could|should|would|will|has|have|used|for|in|on|"
    r"and|or|mean|means|work|works|then|again|exactly|then)\b)[A-Za-z]))",
    re.I)
# Openers that continue the last question: "what about X", "and for GANs?", "how about the decoder".
CONTINUATION = re.compile(r"^\s*(?:(?:and|but|so|ok(?:ay)?|then)\s*,?\s*)?(?:what|how)\s+about\b\s*(.*)$", re.I)
LEADING_CONJUNCTION = re.compile(r"^\s*(?:and|but|so|also|then|plus)\b[\s,]*(.*)$", re.I)
# "It" that points at nothing: "is it true that ...", "what does it mean when ...", "it is possible to ...".
DUMMY_IT = re.compile(
    r"(?:\b(?:is\s+)?it(?:'s|\s+is|\s+was)?\s+(?:true|possible|better|worse|necessary|important|common|normal|hard|"
    r"easy|ok|okay|fine|worth|enough|best)\s+(?:to|that|if|when|for)\b|\bit\s+(?:mean|means)\s+(?:when|if|that)\b|"
    r"\bhow\s+come\b|\bis\s+it\s+(?:true|possible|necessary|common|normal)\b)"
    r"(?:\s+that\b)?",
    re.I)
# "what if i've got a gpu?": the previous question, under a new condition.
WHAT_IF = re.compile(r"^\s*(?:(?:and|but|so|ok(?:ay)?)\s*,?\s*)?what\s+if\b\s*(.+)$", re.I)
# "can diffusion models do that too?": the previous question, about a new subject.
DO_THAT = re.compile(r"^\s*(?:and\s+)?(?:can|could|do|does|did|will|would)\s+(.+?)\s+(?:do|does|did)\s+(?:that|this|it|the\s+same)"
                     r"(?:\s+(?:too|also|as\s+well))?\s*[?.!]*\s*$", re.I)
# "does the sampling function use a different one?": "one" standing for a noun said before.
ONE_OF_THE_KIND = re.compile(r"\b(?:a|the)\s+(?:different|same|similar|new|separate|other)\s+one\b", re.I)
# "and when the prompt has no context?": a side clause continuing the previous question.
CONJUNCTION_FRAGMENT = re.compile(r"^\s*(?:and|but|so|or)\s*,?\s*(?:when|if|whenever|unless|without|with)\b\s*(.+)$",
                                  re.I)
# "and the diffusion one?": the previous topic with another modifier.
THE_X_ONE = re.compile(r"^\s*(?:the|a|an)\s+([\w-]+(?:\s+[\w-]+)?)\s+ones?\s*$", re.I)
# "how many epochs": a question fragment asking for something else about the previous subject.
WH_FRAGMENT = re.compile(r"^\s*(how\s+many|how\s+much|what|which)\s+([\w-]+(?:\s+[\w-]+){0,2})\s*$", re.I)
# A subject taken from a question that quotes text or holds a clause is no safe replacement for a pronoun.
UNSAFE_SUBJECT = re.compile(r"[\"“”?!,;]|'[A-Z]|\b(?:what|which|how|why|when|where)\b", re.I)

# "... when it does that?", "why is that?": a demonstrative that ends the sentence stands for something said before.
TRAILING_DEMONSTRATIVE = re.compile(r"\b(?:this|that|these|those)(?:\s+ones?)?(?:\s+(?:too|also|as\s+well))?\s*[?.!]*\s*$",
                                    re.I)
# "Write the loss.", "Show the code", "Give the formula": a short request about something named before.
DEFINITE_REQUEST = re.compile(r"^\s*(?:please\s+)?(?:write|show|give|list|state|derive|draw)(?:\s+me)?\s+(?:the|its|their)"
                              r"(?:\s+[\w-]+){1,2}\s*[.?!]*\s*$", re.I)
GRAMMAR_AFTER_DET = frozenset("is are was were do does did mean means work works in on for to with again and or so then "
                              "happen happens matter matters help helps rather instead than way one".split())
# Clause boundaries: a noun before one of these can be what a later pronoun points at.
CLAUSE = re.compile(r"\s*(?:,|;|:|\band\b|\bbut\b|\bwhen\b|\bif\b|\bbecause\b|\bsince\b|\bwhile\b|\bso\b|\bwhich\b)\s*", re.I)
QUESTION_OPENER = re.compile(
    r"^\s*(?:(?:and|but|so|ok(?:ay)?|then)\s*,?\s*)?"
    r"(?:(?:what|which|who|how|why|when|where)(?:'s|\s+(?:exactly\s+)?(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have))?"
    r"|(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have)"
    r"|(?:please\s+)?(?:explain|describe|define|tell\s+me\s+about|give\s+me|show\s+me|summari[sz]e))\b\s*",
    re.I)
TRAILING_VERB = re.compile(r"\s+(?:do|does|work|works|mean|means|matter|matters|help|helps|happen|happens|"
                           r"look\s+like|stand\s+for|come\s+from|used\s+for|for)\s*$", re.I)
MAX_TOPIC_WORDS = 16


def _words(text: str) -> list[str]:
    return WORD.findall(text)


def content_words(text: str) -> list[str]:
    """The words that name a topic (not question words, pronouns or fillers)."""
    return [w for w in _words(text) if w.lower() not in FUNCTION_WORDS and w.lower() not in PRONOUNS
            and w.lower() not in ORDINALS]


def _pronoun_without_antecedent(text: str) -> bool:
    """A pronoun (or "this/that" + noun) with nothing before it that it could point at.

    "it/they/them" look for a topic word in an earlier clause ("What is X and why
    do we need it?"); "this/that/these/those" after a topic word in the same
    clause are relative or determiners of a new noun ("the loss that a VAE ...").
    """
    cleaned = DUMMY_IT.sub(" ", text)
    seen_earlier = False  # a topic word in a clause before the current one
    for clause in CLAUSE.split(cleaned):
        seen_here = False
        for word in (w.lower() for w in _words(clause)):
            base = word[:-2] if word.endswith("'s") else word
            if base in DEMONSTRATIVES:
                if not seen_here and not seen_earlier:
                    return True
            elif base in PRONOUNS:
                if not seen_earlier:
                    return True
            elif content_words(word):
                seen_here = True
        seen_earlier = seen_earlier or seen_here
    return False


def refers_back(text: str) -> bool:
    """True when `text` leans on earlier turns to be understood."""
    text = " ".join(str(text or "").split())
    if not text or text.startswith("/"):
        return False
    if CONTINUATION.match(text) or DEFINITE_REQUEST.match(text) or WHAT_IF.match(text) or DO_THAT.match(text):
        return True
    if ONE_OF_THE_KIND.search(text) or CONJUNCTION_FRAGMENT.match(text):
        return True
    if ORDINAL_REF.search(text):
        return True
    if _pronoun_without_antecedent(text) or TRAILING_DEMONSTRATIVE.search(text):
        return True
    topic = content_words(text)
    if not topic:  # "why?", "how so?", "an example please", "go on"
        return True
    conj = LEADING_CONJUNCTION.match(text)
    # "And for GANs?", "But in code?": a conjunction opening a very short message.
    return bool(conj) and len(topic) <= 2 and len(_words(conj.group(1))) <= 4


# -- deterministic rewrite ---------------------------------------------------------------
def _strip(text: str) -> str:
    return " ".join(str(text or "").split()).strip()


VERBS = frozenset("""take takes use uses need needs make makes have has produce produces learn learns output outputs
predict predicts generate generates compute computes get gets give gives receive receives return returns add adds
apply applies solve solves fix fixes create creates train trains sample samples encode encodes decode decodes
measure measures pull pulls push pushes map maps mean means work works do does help helps affect affects
show shows contain contains control controls represent represents report reports save saves change changes
look looks stand stands come comes fine-tune fine-tunes tune tunes adapt adapts minimise minimises
minimize minimizes maximise maximises maximize maximizes optimise optimises optimize optimizes estimate estimates
approximate approximates prevent prevents cause causes reduce reduces increase increases improve improves require
requires call calls run runs read reads store stores load loads replace replaces""".split())
AUX_OPENER = re.compile(r"^\s*(?:(?:what|which|how|why|when|where)\s+)?(?:do|does|did|can|could|should|would|will)\b", re.I)
AUXILIARY = r"(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have)\b"
# "What network architecture predicts ...", "Which framework is ...": a wh-word followed by a noun of its own.
WH_NOUN = re.compile(rf"^\s*(?:what|which|how\s+many|how\s+much)\s+(?!{AUXILIARY})", re.I)
# "Which framework is the VAE example written in": that noun, then the auxiliary and the subject.
WH_NOUN_AUX = re.compile(rf"^\s*(?:what|which|how\s+many|how\s+much)\s+(?!{AUXILIARY})((?:[\w-]+\s+){{0,3}}?[\w-]+)\s+({AUXILIARY})\s+(.+)$",
                         re.I)
# "How long is the VAE sub-topic ...", "how big is the dataset": the adjective is what is asked, not the subject.
HOW_ADJECTIVE = re.compile(rf"^\s*how\s+(?!many\b|much\b|come\b)[a-z]+\s+(?={AUXILIARY})", re.I)
# "In the GAN code, what does the train function loop over": a leading place, kept as the topic's context.
LEADING_CONTEXT = re.compile(r"^\s*(?:in|inside|within|for|during)\s+((?:the|a|an|this|our)\s+[^,]{2,60}?),\s*(.+)$",
                             re.I)
# "Is the noise predictor in the diffusion code a full U-Net": the subject ends where the complement's article starts.
YES_NO_COMPLEMENT = re.compile(r"^(.{3,}?)\s+(?:a|an)\s+\S", re.I)
PREPOSITIONS = frozenset("on in to for with from about at over into onto by of as".split())
HAPPENS = re.compile(r"^\s*what\s+happens\s+(?:in|to|during|inside|at|within|after|before)\s+(.+)$", re.I)
SUBJECT_PRONOUN = re.compile(r"^(?:we|you|i|people)\s+(?=\w)", re.I)
NOT_A_NAME = frozenset("because yes no so to by".split())  # replies that are reasons or answers, not names
DETERMINERS = frozenset("the a an its their this that these those each every no any some our your my".split())
PARTICIPLES = frozenset("written known given chosen taken shown drawn seen done made built found kept held set put split"
                        .split())
NOT_ADVERBS = frozenset("only early family anomaly assembly apply supply reply poly fly".split())


def _predicate_word(word: str) -> bool:
    """A word that starts the verb part after a subject: a participle, an adverb, "be"."""
    lower = word.lower()
    return (lower in PARTICIPLES or lower in ("be", "best", "often", "always", "never", "mostly", "also", "still")
            or (len(lower) >= 4 and lower.endswith("ed"))
            or (len(lower) > 4 and lower.endswith("ly") and lower not in NOT_ADVERBS))


def _predicate_start(words: list[str]) -> int | None:
    """Where the verb part of "SUBJECT [adverb] participle ..." starts: "the VAE example | written in"."""
    for i, word in enumerate(words):
        if i > 0 and words[i - 1].lower() not in DETERMINERS and _predicate_word(word):
            return i  # (after a determiner it is an adjective: "the learned prior", "the best model")
    return None


def _unlisted_verb(words: list[str]) -> int | None:
    """Where a verb we do not list starts the rest of the question ("the MockLLM in the RAG code | decide what to")."""
    if len(words) <= 2:
        return None
    for i in range(1 if words[0].lower() not in DETERMINERS else 2, len(words)):
        previous, word = words[i - 1].lower(), words[i].lower()
        following = words[i + 1].lower() if i + 1 < len(words) else ""
        if word in PREPOSITIONS or word in DETERMINERS or previous in DETERMINERS or previous in PREPOSITIONS:
            continue
        if following in ("what", "how", "which", "whether", "to", "the", "a", "an", "it", "them", "its", "their"):
            return i  # a verb taking an object or a clause
    last = len(words) - 1  # a verb ending the question ("does the GAN code minimise"), or verb + particle ("rely on")
    return last - 1 if words[last].lower() in PREPOSITIONS and last >= 3 else last


def topic_of(question: str) -> str:
    """The subject of a question: "What are the two terms of the VAE loss?" -> "the two terms of the VAE loss"."""
    text = _strip(question).rstrip("?.!").strip()
    context = LEADING_CONTEXT.match(text)
    if context and QUESTION_OPENER.match(context.group(2)):  # "In the GAN code, what does X do" -> "X in the GAN code"
        inner = topic_of(context.group(2))
        return f"{inner} in {context.group(1)}" if inner != context.group(2).rstrip("?.!").strip() else text
    text = HOW_ADJECTIVE.sub("", text, count=1)  # "how long is X supposed to take" -> "is X supposed to take"
    happens = HAPPENS.match(text)
    wh_noun = WH_NOUN_AUX.match(text)
    asked_for = ""
    if happens:  # "What happens in the forward process of a diffusion model" -> "the forward process ..."
        body, verb_after = happens.group(1), False
    elif wh_noun and content_words(wh_noun.group(1)):  # "Which framework is | the VAE example | written in"
        body, verb_after = wh_noun.group(3), True
        if _predicate_word(body.split()[0]):  # "Which metrics are | commonly used ...": the wh-noun is the subject
            return f"{wh_noun.group(1)} {body}"
        asked_for = wh_noun.group(1)  # "What loss does the diffusion code train on" -> "the loss of the diffusion code"
    else:
        body = QUESTION_OPENER.sub("", text, count=1)
        verb_after = bool(AUX_OPENER.match(text))
        if WH_NOUN.match(text):  # "What network architecture predicts the noise ...": all of it names the topic
            return " ".join(body.split()[:MAX_TOPIC_WORDS])
    words = body.split()
    if verb_after and words and SUBJECT_PRONOUN.match(words[0] + " x"):
        # "why do we chunk documents in RAG": with "we" as subject, the topic is what is done ("chunk documents in RAG")
        words = words[1:] if len(words) > 2 else words
    elif verb_after:  # "What does the noise predictor take as input" -> "the noise predictor"
        # (a verb right after a determiner is a noun: "the train function", "the sample grid")
        cut = next((i for i in range(len(words) - 1, 0, -1)
                    if words[i].lower() in VERBS and words[i - 1].lower() not in DETERMINERS), None)
        if cut is None:
            cut = _unlisted_verb(words)
        if cut:
            words = words[:cut]
    elif re.match(rf"^\s*{AUXILIARY}", text, re.I):  # "Is X a Y", "is there a Z in W"
        words = re.sub(r"^there\s+", "", body, flags=re.I).split()
        complement = YES_NO_COMPLEMENT.match(" ".join(words))
        if complement and len(complement.group(1).split()) >= 2 and words[0].lower() not in ("a", "an"):
            words = complement.group(1).split()
    cut = _predicate_start(words)
    if cut:
        words = words[:cut]
    body = SUBJECT_PRONOUN.sub("", " ".join(words))
    body = TRAILING_VERB.sub("", body).strip(" ,")
    if body and asked_for:
        body = f"the {asked_for} of {body}"
    words = body.split()
    if len(words) > MAX_TOPIC_WORDS:
        body = " ".join(words[:MAX_TOPIC_WORDS])
    return body or text


LIST_LINE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(.+)$")
SENTENCE = re.compile(r"(?<=[.!?])\s+")
MARKERS = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")
ENUM_SPLIT = re.compile(r"\s*(?:,\s*(?:and|or)\s+|,\s*|\s+and\s+|\s+or\s+|;\s*)", re.I)
SUBORDINATE = re.compile(r"\b(?:before|after|when|whenever|because|until|while|if|since|unless|once)\b", re.I)
LEAD_IN = re.compile(r"^.*?\b(?:are|is|were|include|includes|including|namely|:)\s+", re.I)


NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "both": 2, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6}


def enumeration(reply: str, expected: int | None = None) -> list[str]:
    """The items a reply lists: a bulleted/numbered list, else "A, B and C" in its first sentences.

    With `expected` (the question asked for "two terms"), only a list of that length counts.
    """
    reply = MARKERS.sub("", reply or "")
    items = []
    for line in reply.splitlines():
        found = LIST_LINE.match(line)
        if found:
            item = re.split(r"\s*(?::|\s[-\u2013\u2014]\s|\.\s)", found.group(1).strip("*_ "), maxsplit=1)[0]
            items.append(item.strip("*_ .").strip())
    if len(items) >= 2 and expected in (None, len(items)):
        return items
    for sentence in SENTENCE.split(_strip(reply))[:3]:
        text = sentence.rstrip(".!?")
        lead = LEAD_IN.match(text)
        if lead and SUBORDINATE.search(lead.group(0)):
            continue  # "... before they are embedded and indexed": the "and" joins verbs of a side clause
        body = text[lead.end():] if lead else text
        # "An encoder and a decoder, trained together ...": the list may end at a comma
        candidates = [body] + [body[:comma.start()] for comma in re.finditer(",", body)]
        for candidate in candidates:
            if not re.search(r"\b(?:and|or)\b", candidate, re.I):
                continue  # "A, B and C": a list ends with a conjunction
            parts = [p.strip(" .") for p in ENUM_SPLIT.split(candidate) if p.strip(" .")]
            if 2 <= len(parts) <= 6 and all(len(p.split()) <= 8 for p in parts) and expected in (None, len(parts)):
                return parts
    return []


def stated_item(reply: str, which: str) -> str | None:
    """What a reply says the ordinal item is: "... the second is the KL divergence." -> "the KL divergence"."""
    if which not in ORDINALS:
        return None
    found = re.search(rf"\b{which}\b(?:\s+\w+)?\s+(?:is|are|being)\s+(?:called\s+)?([^.;:!?\[]{{3,80}})",
                      MARKERS.sub("", reply or ""), re.I)
    return found.group(1).strip(" ,") if found else None


def expected_count(question: str) -> int | None:
    """"What are the two terms ..." -> 2: how many items the question asked for."""
    for word in _words(question.lower()):
        if word in NUMBER_WORDS:
            return NUMBER_WORDS[word]
    return None


def _last(history: Sequence[Turn], role: str) -> str:
    for turn in reversed(list(history or [])):
        if isinstance(turn, dict) and turn.get("role") == role and _strip(turn.get("content")):
            return _strip(turn.get("content"))
    return ""


def _previous_question(history: Sequence[Turn], depth: int = 3) -> tuple[str, list[Turn]]:
    """The last user question, itself resolved against the turns before it (a chain of follow-ups)."""
    turns = [t for t in (history or []) if isinstance(t, dict) and t.get("role") in ("user", "assistant")
             and _strip(t.get("content"))]
    for index in range(len(turns) - 1, -1, -1):
        if turns[index].get("role") == "user":
            text = _strip(turns[index]["content"])
            if text.startswith("/"):  # a command: only its argument is a question
                text = text.split(" ", 1)[1] if " " in text else ""
                if not text:
                    continue
            earlier = turns[:index]
            if depth > 0 and refers_back(text) and earlier:
                text = rewrite(text, earlier, depth - 1)
            return text, turns[index + 1:]
    return "", []


def short_answer(reply: str) -> str | None:
    """The last reply when it is just a name ("A U-Net.", "Adam with 1e-4."): what "that one" points at."""
    sentences = SENTENCE.split(_strip(MARKERS.sub("", reply or "")))
    first = sentences[0].rstrip(".!?").strip() if sentences and sentences[0] else ""
    words = first.split()
    if not 1 <= len(words) <= 8 or words[0].lower() in PRONOUNS or words[0].lower() in NOT_A_NAME:
        return None
    return _lower_article(first)


def _replace_pronoun(text: str, subject: str, plural: str | None = None,
                     answer: str | None = None) -> tuple[str, bool]:
    """Put what it points at where the first pronoun without antecedent is.

    "it" is the previous question's subject; "they/them" the items the last reply
    listed (else the subject); a bare "that" or "that one" the last reply when it
    is only a name ("Why that one?" after "A U-Net.").
    """
    def swap(match: re.Match) -> str:
        lower = match.group(1).lower()
        target = subject
        if lower in ("they", "them", "their", "theirs", "these", "those") and plural:
            target = plural
        elif lower in ("this", "that") and answer:
            target = answer
        return f"{target}'s" if lower in ("its", "their", "theirs") else target

    # A demonstrative before a noun ("this term") keeps the noun: "this term" -> "the term of SUBJECT".
    det = re.search(r"\b(this|that|these|those)\s+([A-Za-z][\w-]*)(?=\s+\w)", text, re.I)
    if (det and det.group(2).lower() not in GRAMMAR_AFTER_DET and det.group(2).lower() not in PRONOUNS
            and content_words(det.group(2))):
        start, end = det.span()
        return f"{text[:start]}the {det.group(2)} of {subject}{text[end:]}", True
    pattern = re.compile(r"\b(it|its|they|them|their|theirs|this|that|these|those)\b(?:\s+ones?\b)?", re.I)
    for match in pattern.finditer(text):
        before = text[:match.start()]
        if DUMMY_IT.search(text[max(0, match.start() - 8):match.end() + 12]):
            continue
        if content_words(CLAUSE.split(before)[-1] if before else "") and match.group(1).lower() in ("that", "this"):
            continue  # "the loss that ..." is a relative clause, not a reference
        return text[:match.start()] + swap(match) + text[match.end():], True
    return text, False


def rewrite(question: str, history: Sequence[Turn], depth: int = 3) -> str:
    """A self-contained version of `question`, by rules. Unchanged when it does not refer back."""
    question = _strip(question)
    if not refers_back(question):
        return question
    previous, after = _previous_question(history, depth)
    if not previous:
        return question
    reply = _last(after, "assistant")
    subject = topic_of(previous)
    body = question.rstrip("?.! ")

    do_that = DO_THAT.match(question)
    if do_that:  # "can diffusion models do that too?" -> the previous question about diffusion models
        question_before = previous.rstrip("?.! ")
        if subject and subject in question_before:
            return question_before.replace(subject, do_that.group(1), 1) + "?"
        return ask_about(previous, subject, do_that.group(1))
    condition = WHAT_IF.match(body) or CONJUNCTION_FRAGMENT.match(body)
    if condition:  # "what if i've got a gpu?", "and when the prompt has no context?"
        lead = "if" if WHAT_IF.match(body) else re.match(r"^\s*(?:and|but|so|or)\s*,?\s*(\w+)", body).group(1)
        return f"{previous.rstrip('?.! ')}, {lead.lower()} {condition.group(1).strip(' ,')}?"

    continuation = CONTINUATION.match(body)
    conjunction = LEADING_CONJUNCTION.match(body)
    if continuation or (conjunction and content_words(conjunction.group(1))
                        and not ORDINAL_REF.search(body) and not _pronoun_without_antecedent(conjunction.group(1))):
        # "what about the decoder?", "and zero-shot?": the previous question, asked about the new thing.
        new = (continuation or conjunction).group(1).strip(" ,") or subject
        return ask_about(previous, subject, new)

    ordinal = ORDINAL_REF.search(body)
    if ordinal:
        which = ordinal.group(1).lower()
        count = expected_count(previous)
        item = (stated_item(reply, which)
                or item_or_none(enumeration(reply, count) or enumeration(previous, count), which))
        named = item or f"the {which} {ordinal.group(2) or ordinal.group(3) or 'one'} of {subject}"
        resolved = body[:ordinal.start()] + named + body[ordinal.end():]
        resolved = re.sub(r"^\s*(?:and|but|so|then)\b[\s,]*", "", resolved, flags=re.I)
        return _finish(resolved, subject)

    items = [_lower_article(item) for item in enumeration(reply)]
    if any(len(item.split()) > 6 for item in items):
        items = []  # sentences, not names: "they" is then the previous subject
    safe = not UNSAFE_SUBJECT.search(subject) and len(subject.split()) <= 10
    resolved, replaced = _replace_pronoun(body, subject, " and ".join(items[:3]) if items else None,
                                          short_answer(reply)) if safe else (body, False)
    if replaced:
        return _finish(re.sub(r"^\s*(?:and|but|so|then)\b[\s,]*", "", resolved, flags=re.I), "")
    # An ellipsis ("why?", "an example?", "and in code?"): ask it about the previous question.
    rest = LEADING_CONJUNCTION.match(body)
    tail = rest.group(1) if rest else body
    return f"{previous.rstrip('?.! ')}? {tail[:1].upper() + tail[1:]}?".replace("??", "?")


def swap_sibling(previous: str, new: str) -> str | None:
    """Put `new` in place of its sibling in the previous question: a word sharing a suffix of 4+ letters.

    "What is few-shot prompting?" + "zero-shot" -> "What is zero-shot prompting?";
    "... the GAN generator's output layer ..." + "the discriminator" -> "... the GAN discriminator's ...".
    """
    words = content_words(new)
    if not words:
        return None
    head = words[-1].lower()
    best, best_len = None, 3  # a shared "-ing" or "-ion" alone does not make siblings
    for match in WORD.finditer(previous):
        word = match.group(0)
        base = word[:-2] if word.lower().endswith("'s") else word
        if base.lower() == head or base.lower() in FUNCTION_WORDS:
            continue
        common = 0
        for a, b in zip(reversed(base.lower()), reversed(head)):
            if a != b:
                break
            common += 1
        if common > best_len:
            best, best_len = (match.start(), match.start() + len(base)), common
    if best is None:
        return None
    phrase = re.sub(r"^(?:the|a|an)\s+", "", new.strip(" ?.!"), flags=re.I).split()
    before = [w.lower() for w in previous[:best[0]].split()[-3:]]
    while len(phrase) > 1 and phrase[0].lower() in before:  # "the optimal discriminator" + "the optimal generator"
        phrase = phrase[1:]
    text = previous[:best[0]] + " ".join(phrase) + previous[best[1]:]
    return text.rstrip("?.! ") + "?"


PREPOSITION = re.compile(r"^(in|for|with|on|during|at|from|into|about)\s+(.+)$", re.I)
ACRONYM = re.compile(r"\b[A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*s?\b")  # VAE, GANs, DALL-E, LoRA


def ask_about(previous: str, subject: str, new: str) -> str:
    """The previous question asked about `new` ("what about X?"): swap what X replaces, else append it.

    "in banking" replaces the previous "in healthcare"; "GANs" a sibling word
    ("few-shot" -> "zero-shot") or a subject of the same shape (another model
    name: "a VAE" -> "GANs"); otherwise "..., for X?".
    """
    question = previous.rstrip("?.! ")
    kind = THE_X_ONE.match(new)
    topic_words = subject.split()
    if kind and subject in question and len(topic_words) >= 3:  # "the VAE sub-topic" + "the diffusion one"
        return question.replace(subject, " ".join(topic_words[:-2] + [kind.group(1), topic_words[-1]]), 1) + "?"
    fragment = WH_FRAGMENT.match(new)
    asked = WH_NOUN_AUX.match(question)
    if fragment and asked and question.lower().startswith(fragment.group(1).lower().split()[0]):
        # "how many diffusion steps does the code use" + "how many epochs" -> "how many epochs does the code use"
        return f"{question[:asked.start(1)]}{fragment.group(2)}{question[asked.end(1):]}?"
    prep = PREPOSITION.match(new)
    if prep:
        found = list(re.finditer(rf"\b{prep.group(1)}\s+", question, re.I))
        if found:
            return f"{question[:found[-1].start()]}{prep.group(1)} {prep.group(2)}?"
        new = prep.group(2)
    swapped = swap_sibling(previous, new)
    if swapped:
        return swapped
    if subject and subject in question and ACRONYM.search(subject) and ACRONYM.fullmatch(new.strip()):
        return question.replace(subject, new.strip(), 1) + "?"
    return f"{question}, for {new}?"


def item_or_none(items: list[str], which: str) -> str | None:
    """The item an ordinal names ("second" -> items[1]); None without a list or for "other"."""
    if not items or which not in ORDINALS:
        return None
    index = ORDINALS[which]
    return _lower_article(items[index] if -len(items) <= index < len(items) else items[-1])


def _lower_article(phrase: str) -> str:
    """"A U-Net" -> "a U-Net": a reply's opening article, moved inside a question."""
    return re.sub(r"^(The|A|An)\b", lambda m: m.group(1).lower(), phrase)


def _finish(text: str, context: str) -> str:
    text = _strip(text)
    text = text[:1].upper() + text[1:]
    if context and context.lower() not in text.lower():
        text = f"{text} ({context})"
    return text.rstrip("?.! ") + "?"


# -- optional LLM rewrite ----------------------------------------------------------------
LLM_INSTRUCTION = (
    "Rewrite the student's last message as one self-contained question that names its topic explicitly, "
    "using the conversation only to resolve words like 'it', 'the second one' or 'what about'. "
    "Do not answer it. Reply with the question only, on one line.")
MAX_REWRITE_CHARS = 300


def llm_messages(question: str, history: Sequence[Turn], max_turns: int = 4) -> list[dict[str, str]]:
    """Chat messages asking a model for the standalone question (conversation fenced as data)."""
    turns = [t for t in (history or []) if isinstance(t, dict) and t.get("role") in ("user", "assistant")]
    lines = [f"{t['role']}: {_strip(t.get('content'))[:600]}" for t in turns[-max_turns:]]
    conversation = "\n".join(lines).replace("</conversation>", "</ conversation>")
    return [{"role": "system", "content": LLM_INSTRUCTION},
            {"role": "user", "content": f"<conversation>\n{conversation}\n</conversation>\n"
                                        f"Last message: {_strip(question)}\nStandalone question:"}]


def accept_llm_rewrite(candidate: str, question: str) -> str | None:
    """The model's rewrite if it looks like one question; None otherwise (then the rules are used)."""
    text = _strip((candidate or "").splitlines()[0] if (candidate or "").strip() else "")
    text = re.sub(r"^(?:standalone question|question|rewritten)\s*:\s*", "", text, flags=re.I).strip(" \"'`")
    if not text or len(text) > MAX_REWRITE_CHARS or len(text) < 4:
        return None
    if refers_back(text) or not content_words(text):
        return None  # still leans on the conversation: no better than the message itself
    return text


@dataclass(frozen=True)
class Resolution:
    question: str  # what the user typed
    resolved: str  # what retrieval and the coverage check use
    method: str  # "none" (self-contained), "rules" or "llm"

    @property
    def changed(self) -> bool:
        return self.resolved != self.question


def resolve(question: str, history: Sequence[Turn] | None,
            complete: Callable[[list[dict[str, str]]], str] | None = None) -> Resolution:
    """Resolve a follow-up against `history`; `complete(messages) -> text` enables the LLM rewrite."""
    question = _strip(question)
    if not history or not refers_back(question):
        return Resolution(question, question, "none")
    by_rules = rewrite(question, history)
    if complete is not None:
        try:
            better = accept_llm_rewrite(complete(llm_messages(question, history)), question)
        except Exception:  # noqa: BLE001 - a failing model falls back to the rules
            better = None
        if better:
            return Resolution(question, better, "llm")
    return Resolution(question, by_rules, "rules" if by_rules != question else "none")
