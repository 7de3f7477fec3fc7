"""Data checks happen before any training: one clear error per bad file."""

import json

import pytest

from course_assistant_plugins.classifier.data import SENTIMENT_FILE, load_labelled, split
from course_assistant_plugins.classifier.service import builtin_data

# the intents the built-in plugins serve (each contributes its own examples)
INTENTS = ("ask", "image_sample", "image_train", "reason", "extract_json", "classify", "ingest", "help")


def test_shipped_intent_data_covers_every_intent_with_variety():
    data, _ = builtin_data("intents")
    counts = data.counts()
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 40
    assert len(set(t.lower() for t in data.texts)) == len(data)  # no duplicates
    # theory questions that mention images are "ask", requests for pictures are not
    rows = {t: y for t, y in zip(data.texts, data.labels)}
    assert rows["how does a GAN generator make images?"] == "ask"
    assert rows["make me 9 gan images"] == "image_sample"


def test_shipped_sentiment_data():
    data = load_labelled(SENTIMENT_FILE)
    assert set(data.counts()) == {"positive", "negative", "neutral"}
    assert len(data) >= 300
    assert min(data.counts().values()) >= 100


def test_split_is_fixed_stratified_and_disjoint():
    data, _ = builtin_data("intents")
    a, b = split(data), split(data)
    assert a.test.texts == b.test.texts and a.train.texts == b.train.texts
    parts = [set(a.train.texts), set(a.validation.texts), set(a.test.texts)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(map(len, parts)) == len(data)
    assert set(a.test.labels) == set(INTENTS)


BAD_FILES = {
    "missing column": ("a.csv", "sentence,label\nhello,x\n", "no column 'text'"),
    "single class": ("b.csv", "text,label\n" + "".join(f"t{i},only\n" for i in range(12)), "only one class"),
    "empty texts": ("c.csv", "text,label\n" + "".join(f",l{i % 2}\n" for i in range(12)), "empty"),
    "too few": ("d.csv", "text,label\n" + "".join(f"t{i},a\n" for i in range(10)) + "x,b\ny,b\n", "too few examples for 'b' (2)"),
    "bad jsonl": ("e.jsonl", '{"text": "a", "label": "x"}\n{oops\n', "not valid JSON"),
    "unsupported": ("f.xlsx", "whatever", "unsupported file type"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_data_is_rejected_before_training(case, run_cli, home, tmp_path):
    name, content, message = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(content)
    code, out, err = run_cli("classify", "train", "--data", str(path), "--name", "bad")
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (home / "models" / "classifiers" / "bad").exists()


def test_binary_and_missing_files(run_cli, tmp_path):
    blob = tmp_path / "blob.csv"
    blob.write_bytes(b"\x00\x01\x02" * 100)
    code, _, err = run_cli("classify", "train", "--data", str(blob))
    assert code == 1 and "binary" in err
    code, _, err = run_cli("classify", "train", "--data", str(tmp_path / "nope.csv"))
    assert code == 1 and "no such file" in err


def test_jsonl_with_custom_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"text {i}", "tag": "ab"[i % 2]}) for i in range(12)))
    data = load_labelled(path, "body", "tag")
    assert data.counts() == {"a": 6, "b": 6}


def test_train_only_flags_need_train(run_cli):
    code, _, err = run_cli("classify", "hello", "--data", "x.csv")
    assert code == 1 and "only apply to training" in err
    code, _, err = run_cli("classify", "train")
    assert code == 1 and "needs --data" in err
    code, _, err = run_cli("classify", "hello", "--model", "no-such-model")
    assert code == 1 and "no trained classifier named 'no-such-model'" in err


def test_chat_training_reports_bad_data(context, tmp_path):
    from assistant.events import Collected
    from assistant.router import dispatch

    result = Collected(dispatch(f"/classify train --data {tmp_path / 'missing.csv'} --name x", context))
    assert len(result.errors) == 1 and "no such file" in result.errors[0].message
    result = Collected(dispatch("/classify --epochs many hello", context))
    assert result.errors and "--epochs expects int" in result.errors[0].message


def test_plugin_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, course_assistant_plugins.classifier, assistant.cli\n"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'sklearn', 'numpy') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
