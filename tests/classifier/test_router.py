"""The intent_classifier service, `assistant route --json` and /classify in the chat."""

import json

import pytest

from assistant.events import Collected
from assistant.router import dispatch, resolve

pytestmark = pytest.mark.slow

# Written for the tests: none of these lines is in the training data.
UNSEEN = [
    ("how do diffusion models turn noise into a picture?", "ask"),
    ("could you make me 6 images with the gan", "image_sample"),
    ("train the variational autoencoder for 7 epochs", "image_train"),
    ("think step by step: what is 13 times 17", "reason"),
    ("extract the name and age from this text as json: Ben is 30", "extract_json"),
    ("what's the sentiment of 'the exam was awful'", "classify"),
    ("please ingest ~/notes/week9.md", "ingest"),
    ("what commands can i use here?", "help"),
]


def test_route_json_batch(intents_home, run_cli):
    from assistant.registry import Registry

    known = {text for text, _ in Registry.load().intent_examples()}
    assert not known & {text for text, _ in UNSEEN}
    stdin = "\n".join(text for text, _ in UNSEEN) + "\n"
    code, out, err = run_cli("route", "--json", stdin=stdin)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == [t for t, _ in UNSEEN]
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)
    right = sum(r["intent"] == want for r, (_, want) in zip(rows, UNSEEN))
    assert right >= len(UNSEEN) - 1, rows
    by_text = {r["text"]: r for r in rows}
    assert by_text["could you make me 6 images with the gan"]["slots"] == {"n": 6, "model": "gan"}


def test_router_sends_free_text_to_plugins_with_slots(intents_home, context):
    route = resolve("draw 16 sevens with the diffusion model", context)
    assert route.request.intent == "image_sample"
    assert route.request.options == {"model": "diffusion", "n": 16, "label": 7}
    route = resolve("how does a GAN generator make images?", context)
    assert route.request.intent == "ask"
    assert context.service("intent_classifier").backend == "lora"


def test_slash_classify_in_the_chat(intents_home, context):
    result = Collected(dispatch("/classify make me 9 gan images --model intents", context))
    assert not result.errors
    assert result.data[0]["label"] == "image_sample" and result.data[0]["model"] == "intents"
    assert "image_sample" in result.text


def test_fallback_answers_while_the_lora_model_trains(home, context, monkeypatch):
    """No trained model: the first message is answered by the centroid fallback, training runs behind."""
    import threading

    from course_assistant_plugins.classifier import service

    release = threading.Event()

    def slow_training(home_dir, name, cancel=None, examples=None):  # stands in for a long run on a slow machine
        while not release.wait(0.05):
            if cancel is not None and cancel.cancelled:
                return
        yield from ()

    monkeypatch.setattr(service, "ensure_model", slow_training)
    router = context.service("intent_classifier")
    intent, confidence, slots = router.predict("make me 9 gan images")
    try:
        assert router.backend == "centroid"
        assert router.training_in_progress
        assert intent == "image_sample" and slots == {"model": "gan", "n": 9}
        assert 0 < confidence <= 1
    finally:
        router.close()  # cancel the background run
        router._thread.join(timeout=120)
    assert not router.training_in_progress
    assert not (home / "models" / "classifiers" / "intents" / "meta.json").exists()


def test_the_chat_is_told_once_when_the_lora_model_takes_over(home, context):
    router = context.service("intent_classifier")
    routes = [resolve("make me 9 gan images", context)]  # starts the background training
    router._thread.join(timeout=300)
    assert router.backend == "lora"
    routes += [resolve("make me 9 gan images", context) for _ in range(2)]
    told = [n.message for r in routes for n in r.notices if "LoRA model finished training" in n.message]
    assert len(told) == 1
    assert not [n for n in routes[-1].notices if "LoRA" in n.message]
    assert routes[-1].request.options == {"model": "gan", "n": 9}


def test_retrain_when_the_shipped_data_changes(intents_home):
    from course_assistant_plugins.classifier.service import is_current

    assert is_current(intents_home, "intents")
    meta_path = intents_home / "models" / "classifiers" / "intents" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["data"]["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    assert not is_current(intents_home, "intents")


def test_huge_and_empty_input(intents_home, run_cli):
    code, out, err = run_cli("classify", "--model", "intents", "--json", stdin="make me 9 gan images " * 20_000 + "\n")
    assert code == 0, err
    assert json.loads(out)["label"] == "image_sample"
    code, _, err = run_cli("route", "--json", stdin="\n  \n")
    assert code == 1 and "nothing to route" in err
