"""Real MiniLM + PEFT LoRA training on the shipped intent data, saving, loading, merging."""

import json
import shutil

import numpy as np
import pytest

from assistant.events import Data, Progress

pytestmark = pytest.mark.slow


def _report(events):
    return next(e.obj for e in events if isinstance(e, Data) and e.obj.get("action") == "classifier_trained")


def test_intent_model_meets_the_accuracy_goal(trained_intents):
    home, events, result = trained_intents
    report = _report(events)
    assert report["accuracy"] >= 0.9, report
    assert report["macro_f1"] >= 0.85, report
    assert len(report["confusion"]) == len(report["classes"]) == 8
    assert sum(map(sum, report["confusion"])) == report["n"]
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].done == progress[-1].total
    # LoRA: a small share of the weights trains (adapters on query/value + the head)
    assert 0 < report["trainable_share"] < 0.01
    names = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n and "query" in n for n in names)
    assert any("lora_B" in n and "value" in n for n in names)
    assert any("classifier" in n and "modules_to_save" in n for n in names)
    assert not any("key" in n or "intermediate" in n for n in names)
    directory = home / "models" / "classifiers" / "intents"
    assert (directory / "adapter" / "adapter_model.safetensors").is_file()
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["report"]["accuracy"] == report["accuracy"]
    assert not list(directory.parent.glob(".*tmp"))  # atomic: no temp dirs left behind


def test_saved_adapter_and_merged_model_predict_like_the_trained_one(trained_intents):
    from course_assistant_plugins.classifier import store
    from course_assistant_plugins.classifier.data import split
    from course_assistant_plugins.classifier.lora import predict_proba
    from course_assistant_plugins.classifier.service import builtin_data

    home, _, result = trained_intents
    texts = split(builtin_data("intents")[0]).test.texts
    expected = predict_proba(result.model, result.tokenizer, texts)
    directory = home / "models" / "classifiers" / "intents"
    model, tokenizer, meta = store.load(directory, prefer_merged=False)
    np.testing.assert_allclose(predict_proba(model, tokenizer, texts), expected, atol=1e-4)
    assert meta["classes"] == result.classes
    # the merged model is standalone: plain weights, no PEFT wrapper, same answers
    merged_dir = directory / "merged"
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    merged, merged_tok, _ = store.load(directory, prefer_merged=True)
    assert type(merged).__name__ == "MiniLMClassifier"
    assert not any("lora" in n for n, _ in merged.named_parameters())
    np.testing.assert_allclose(predict_proba(merged, merged_tok, texts), expected, atol=1e-3)


def test_merge_an_existing_adapter_from_the_cli(intents_home, run_cli):
    copy = intents_home / "models" / "classifiers" / "mine"
    shutil.copytree(intents_home / "models" / "classifiers" / "intents", copy)
    code, out, err = run_cli("classify", "train", "--name", "mine", "--merge", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["action"] == "classifier_merged"
    assert (copy / "merged" / "model.safetensors").is_file()
    code, out, err = run_cli("classify", "--model", "mine", "--json", "make me 9 gan images")
    assert code == 0, err
    assert json.loads(out)["label"] == "image_sample"


def test_damaged_adapter_gives_a_clear_error(intents_home, run_cli):
    (intents_home / "models" / "classifiers" / "intents" / "adapter" / "adapter_model.safetensors").write_bytes(b"garbage")
    code, out, err = run_cli("classify", "--model", "intents", "hello")
    assert code == 1
    assert "could not be loaded" in err and "retrain" in err
    assert len(err.strip().splitlines()) == 1


FOOD = """We baked fresh bread this morning and it smelled wonderful.
This pasta sauce needs more garlic and basil.
I had a big bowl of ramen for lunch.
The chocolate cake at the cafe was rich and moist.
Dinner tonight is grilled fish with roasted potatoes.
She cooked a spicy curry with lentils and rice.
My favourite breakfast is yoghurt with honey and berries.
The pizza came with olives, mushrooms and extra cheese.
He sliced the tomatoes and onions for the salad.
Add a pinch of salt before you boil the noodles.
The soup was thick, warm and full of vegetables.
We ordered sushi and dumplings from the new place.
Peel the apples and let them simmer with cinnamon.
The sandwich had ham, mustard and crunchy lettuce.""".splitlines()
SPORT = """The striker scored a late goal to win the match.
She ran the marathon in under four hours.
Our basketball team lost by two points last night.
He practises his tennis serve every afternoon.
The cyclists climbed the mountain stage in heavy rain.
The goalkeeper saved a penalty in extra time.
I swim forty lengths at the pool before work.
The boxer won the title fight by knockout.
They trained hard all season for the rugby final.
The sprinter broke the national record in the 100 metres.
The referee showed a red card in the first half.
We went skiing and raced down the black slope.
The volleyball players celebrated their championship win.
He lifted heavier weights at the gym today.""".splitlines()
CSV_ROWS = [(t, "food") for t in FOOD] + [(t, "sport") for t in SPORT]


def test_classify_train_on_a_small_csv_with_report(run_cli, home, tmp_path):
    import csv

    path = tmp_path / "topics.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sentence", "topic"])
        writer.writerows(CSV_ROWS)
    code, out, err = run_cli("classify", "train", "--data", str(path), "--text-col", "sentence", "--label-col", "topic",
                             "--name", "topics", "--rank", "4", "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["classes"] == ["food", "sport"]
    assert report["n"] == 4 and len(report["confusion"]) == 2
    assert report["accuracy"] >= 0.75
    # rank 4 on query and value of 6 layers (384 -> 4 -> 384 each), plus the 2-class head
    assert report["trainable_params"] == 6 * 2 * (384 * 4 + 4 * 384) + 2 * (384 + 1)
    assert 0 < report["trainable_share"] < 0.01
    assert (home / "models" / "classifiers" / "topics" / "adapter" / "adapter_config.json").is_file()
    code, out, err = run_cli("classify", "--model", "topics", "--json", "we grilled sausages and corn for dinner",
                             stdin=None)
    assert code == 0, err
    assert json.loads(out)["label"] == "food"
    code, out, err = run_cli("classify", "--model", "topics", "--json",
                             stdin="she scored two goals in the final\nthe soup needs more salt\n")
    labels = [json.loads(line)["label"] for line in out.splitlines()]
    assert labels == ["sport", "food"]
    code, out, _ = run_cli("classify", "--list", "--json")
    assert [row["name"] for row in json.loads(out)] == ["topics"]
