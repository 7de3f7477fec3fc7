"""Templates: loading, user overrides, listing and clear errors."""

from __future__ import annotations

import json

import pytest

from assistant.router import dispatch
from assistant.events import Collected
from assistant.templates import TemplateError, get_template, load_templates
from course_assistant_plugins.prompting.techniques import RUNNERS

TECHNIQUE_TEMPLATES = {"zero-shot", "few-shot", "cot", "cot-few-shot", "self-consistency", "knowledge", "persona",
                       "delimit", "json"}


def test_builtin_templates_load_with_known_techniques():
    templates = load_templates()
    assert TECHNIQUE_TEMPLATES <= set(templates)
    for name in TECHNIQUE_TEMPLATES:
        template = templates[name]
        assert template.description and template.source == "built-in"
        assert template.technique in RUNNERS, name
        assert "text" in template.variables


def test_user_template_overrides_and_adds(home, run_cli):
    prompts = home / "prompts"
    prompts.mkdir()
    (prompts / "mine.toml").write_text('name = "cot"\ntechnique = "cot"\ndescription = "my own CoT"\n'
                                       'template = "Solve: {{ text }}"\n', encoding="utf-8")
    (prompts / "haiku.toml").write_text('name = "haiku"\ndescription = "answer as a haiku"\n'
                                        'template = "Write a haiku about {{ text }}"\n', encoding="utf-8")
    code, out, _ = run_cli("prompt", "--list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["cot"]["source"] == "user" and rows["cot"]["description"] == "my own CoT"
    assert rows["haiku"]["source"] == "user" and rows["haiku"]["file"].endswith("haiku.toml")
    assert rows["json"]["source"] == "built-in"


def test_slash_prompts_lists_templates(context):
    events = Collected(dispatch("/prompts", context))
    assert "| self-consistency |" in events.text and "built-in" in events.text


@pytest.mark.parametrize("body, field", [
    ('name = "x"\ntemplate = "a {{ text }}"\nvariables = 3\n', "variables"),
    ('name = "x"\n', "template"),
    ('name = "x"\ntemplate = "a {{ text"\n', "template"),
    ('name = "x"\ntemplate = "a"\n[[examples]]\noutput = "no input"\n', "examples[0]"),
])
def test_malformed_template_names_file_and_field(home, body, field):
    prompts = home / "prompts"
    prompts.mkdir()
    (prompts / "bad.toml").write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_templates(prompts)
    message = str(info.value)
    assert "bad.toml" in message and f"'{field}'" in message and "\n" not in message


def test_invalid_toml_is_one_line_cli_error(home, run_cli):
    (home / "prompts").mkdir()
    (home / "prompts" / "broken.toml").write_text("name = [unclosed\n", encoding="utf-8")
    code, _, err = run_cli("prompt", "zero-shot", "hi")
    assert code == 1
    assert "broken.toml" in err and "not valid TOML" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_missing_variable_names_it():
    template = get_template("persona")
    system, user = template.render(text="hi")  # persona has a default
    assert "patient tutor" in system and user == "hi"
    with pytest.raises(TemplateError, match="missing variable 'text'"):
        template.render()


def test_unknown_technique_suggests_closest(run_cli):
    code, _, err = run_cli("prompt", "self-consistancy", "2+2?")
    assert code == 1
    assert "unknown technique 'self-consistancy'" in err and "self-consistency" in err


def test_unknown_template_technique_field(home, context):
    (home / "prompts").mkdir()
    (home / "prompts" / "odd.toml").write_text('name = "odd"\ntechnique = "cott"\ntemplate = "{{ text }}"\n',
                                               encoding="utf-8")
    events = Collected(dispatch("/prompt odd what?", context))
    assert events.errors and "odd.toml" in events.errors[0].message and "'technique'" in events.errors[0].message
    assert "cot" in events.errors[0].message
