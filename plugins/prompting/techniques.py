"""The prompt techniques. Each runner reads a template, talks to the LLM through
`assistant.llm.stream_chat` and yields events; it leaves a result dict in
`run.result` (answer, format_ok, ...) that the command, `prompt eval` and the
benchmark read.

A template names its runner in its `technique` field, so a user template can
reuse any technique with different wording or examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from assistant import Cancelled, Context, Data, Error, Event, Notice, Progress, PromptTemplate, TemplateError, Text

from course_assistant_plugins.prompting import answers, fencing, jsonout

Runner = Callable[["Run"], Iterator[Event]]


@dataclass
class Run:
    context: Context
    template: PromptTemplate
    text: str
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = True  # show model text as it arrives (off in eval and benchmarks)
    steps: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def setting(self, key: str, default: Any = None) -> Any:
        """An option from the command line, else the template's default, else `default`."""
        value = self.options.get(key)
        if value is None:
            value = self.template.defaults.get(key, default)
        return value

    def variables(self) -> dict[str, Any]:
        values = dict(self.options.get("vars") or {})
        values["text"] = self.text
        return values


def generate(run: Run, messages: list[dict[str, str]], label: str, *, show: bool | None = None,
             temperature: float | None = None, max_tokens: int | None = None,
             done: Callable[[str], bool] | None = None) -> Iterator[Event]:
    """One model call; yields Text deltas when shown; returns the full reply.

    Every call's exact prompt is appended to `context.state["last_prompt"]`, so
    /show-prompt shows all steps of a multi-step technique. `done(reply_so_far)`
    ends the reply early once it holds what the technique needs (closing the
    stream stops decoding), e.g. a complete JSON object or an 'Answer:' line.
    """
    from assistant import render_prompt, stream_chat, take_notice

    show = run.stream if show is None else show
    temperature = float(run.setting("temperature", 0.0) if temperature is None else temperature)
    max_tokens = int(run.setting("max_tokens", 256) if max_tokens is None else max_tokens)
    parts: list[str] = []
    try:
        for delta in stream_chat(run.context, messages, temperature=temperature, max_tokens=max_tokens):
            parts.append(delta)
            if show:
                yield Text(delta)
            if done is not None and ("\n" in delta or "}" in delta) and done("".join(parts)):
                break
    finally:
        # stream_chat leaves the exact prompt (chat template applied) in last_prompt; keep every step's.
        exact = run.context.state.get("last_prompt") or render_prompt(messages)
        run.steps.append(f"### {label} (temperature {temperature:g}, max_tokens {max_tokens})\n{exact}")
        run.context.state["last_prompt"] = "\n\n".join(run.steps)
    notice = take_notice(run.context)
    if notice is not None:
        yield notice
    if run.context.cancel.cancelled:
        raise Cancelled()
    return "".join(parts)


def messages_for(system: str, user: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": user}]


def _pick_examples(run: Run, default_k: int) -> tuple[str, list[dict[str, Any]]]:
    """Fill {{ examples }} with the k pool examples most similar to the input."""
    from course_assistant_plugins.prompting import fewshot

    pool = run.template.examples
    k = int(run.setting("k", default_k))
    if k < 0:
        raise ValueError(f"--k must be 0 or more, got {k}")
    chosen = fewshot.most_similar(run.text, pool, min(k, len(pool)))
    block = fewshot.format_examples([e for e, _ in chosen], run.setting("input_label", "Input"),
                                    run.setting("output_label", "Output"))
    return block, [{"input": e["input"], "output": e.get("output", ""), "similarity": round(s, 4)} for e, s in chosen]


# -- techniques ---------------------------------------------------------------

def run_single(run: Run) -> Iterator[Event]:
    """Zero-shot, persona and any plain template: render, ask once."""
    system, user = run.template.render(**run.variables())
    reply = yield from generate(run, messages_for(system, user), run.template.name)
    run.result = {"answer": reply.strip(), "format_ok": bool(reply.strip())}


def run_few_shot(run: Run) -> Iterator[Event]:
    if not run.template.examples:
        raise TemplateError(f"{run.template.path}: field 'examples' is empty; few-shot needs a pool of examples")
    block, chosen = _pick_examples(run, 3)
    system, user = run.template.render(**run.variables(), examples=block)
    reply = yield from generate(run, messages_for(system, user), run.template.name)
    first_line = next((line.strip() for line in reply.splitlines() if line.strip()), "")
    # Format adherence: when every example output is one short line (labels),
    # the reply must be one of those labels; otherwise any non-empty reply.
    outputs = {answers.normalize(str(e.get("output", ""))) for e in run.template.examples}
    labels = all("\n" not in str(e.get("output", "")) and len(str(e.get("output", ""))) <= 40 for e in run.template.examples)
    format_ok = answers.normalize(first_line) in outputs if labels else bool(first_line)
    run.result = {"answer": first_line, "reply": reply.strip(), "format_ok": format_ok, "examples": chosen}


def run_cot(run: Run) -> Iterator[Event]:
    """Chain of thought: zero-shot 'step by step', or worked examples when the
    template has a pool; the final answer is extracted from the reasoning."""
    variables = run.variables()
    chosen: list[dict[str, Any]] = []
    if run.template.examples:
        variables["examples"], chosen = _pick_examples(run, len(run.template.examples))
    system, user = run.template.render(**variables)
    reply = yield from generate(run, messages_for(system, user), run.template.name, done=answers.has_answer_line)
    answer, explicit = answers.extract_answer(reply)
    if run.stream:
        yield Text(f"\n\n**Final answer:** {answer or '(none found)'}\n")
    if not explicit:
        yield Notice("info", "the reasoning has no 'Answer:' line; took the last number or line as the answer")
    run.result = {"answer": answer, "format_ok": explicit, "reasoning": reply.strip()}
    if chosen:
        run.result["examples"] = chosen


def run_self_consistency(run: Run) -> Iterator[Event]:
    paths = int(run.setting("paths", 5))
    temperature = float(run.setting("temperature", 0.7))
    if paths < 1:
        raise ValueError(f"--paths must be at least 1, got {paths}")
    if temperature <= 0:
        yield Notice("warning", "self-consistency needs sampling: temperature raised from "
                                f"{temperature:g} to 0.7 so the paths can differ")
        temperature = 0.7
    system, user = run.template.render(**run.variables())
    messages = messages_for(system, user)
    max_tokens = int(run.setting("max_tokens", 256))
    yield Progress("reasoning paths", 0, paths)
    replies = batched_samples(run, messages, paths, temperature, max_tokens)
    if replies is None:  # the backend cannot sample a batch: one call per path
        replies = []
        for i in range(paths):
            yield Progress("reasoning paths", i, paths)
            reply = yield from generate(run, messages, f"{run.template.name}: path {i + 1}/{paths}", show=False,
                                        temperature=temperature, done=answers.has_answer_line)
            replies.append(reply)
    sampled: list[dict[str, Any]] = []
    for i, reply in enumerate(replies):
        answer, explicit = answers.extract_answer(reply)
        sampled.append({"answer": answer, "explicit": explicit, "reasoning": reply.strip()})
        if run.stream:
            yield Text(f"path {i + 1}: {answer or '(no answer)'}\n")
    yield Progress("reasoning paths", paths, paths)
    winner, votes, agreement = answers.majority_vote([p["answer"] for p in sampled])
    table = ["", "| answer | votes |", "|---|---|"] + [f"| {a} | {n} |" for a, n in votes.items()]
    if run.stream:
        yield Text("\n".join(table) + f"\n\n**Final answer:** {winner or '(none)'}  "
                   f"(agreement {agreement:.0%} of {paths} paths)\n")
    explicit_share = sum(p["explicit"] for p in sampled) / paths
    run.result = {"answer": winner, "votes": votes, "agreement": round(agreement, 3), "paths": sampled,
                  "temperature": temperature, "format_ok": bool(winner) and explicit_share >= 0.5}


def batched_samples(run: Run, messages: list[dict[str, str]], n: int, temperature: float,
                    max_tokens: int) -> list[str] | None:
    """n sampled replies from one batched call (the local transformers backends: 5 paths cost about
    1.5 single replies on a CPU); None when the backend cannot, so the caller samples one call at a time."""
    if n < 2:
        return None
    from assistant import sample_replies

    try:
        replies = sample_replies(run.context, messages, n, temperature, max_tokens)
    except Cancelled:
        raise
    except Exception:  # noqa: BLE001 - any mismatch with the backend: sample one by one instead
        return None
    if replies is None:
        return None
    run.steps.append(f"### {run.template.name}: {n} paths sampled in one batch (temperature {temperature:g}, "
                     f"max_tokens {max_tokens})\n{run.context.state.get('last_prompt', '')}")
    run.context.state["last_prompt"] = "\n\n".join(run.steps)
    return replies


def run_knowledge(run: Run) -> Iterator[Event]:
    """Generated knowledge: step 1 writes facts, step 2 answers with them."""
    step = run.template.extra.get("knowledge")
    if not isinstance(step, dict) or not isinstance(step.get("template"), str):
        raise TemplateError(f"{run.template.path}: field 'knowledge.template' is missing (the fact-generation step)")
    first = PromptTemplate(name=f"{run.template.name}.knowledge", template=step["template"], path=run.template.path,
                           system=str(step.get("system", "")), defaults={k: v for k, v in step.items()
                                                                         if k not in ("system", "template")})
    system, user = first.render(**run.variables())
    if run.stream:
        yield Text("**Generated knowledge**\n")
    facts = yield from generate(run, messages_for(system, user), "step 1: generate knowledge",
                                max_tokens=min(int(step.get("max_tokens", 160)),
                                               int(run.options.get("max_tokens") or 10**6)))
    if run.stream:
        yield Text("\n\n**Answer**\n")
    system, user = run.template.render(**run.variables(), knowledge=facts.strip())
    reply = yield from generate(run, messages_for(system, user), "step 2: answer with the knowledge")
    run.result = {"answer": reply.strip(), "knowledge": facts.strip(),
                  "format_ok": bool(facts.strip()) and bool(reply.strip())}


def run_delimit(run: Run) -> Iterator[Event]:
    cleaned, stripped = fencing.strip_lookalikes(run.text)
    if stripped:
        yield Notice("info", f"removed {stripped} delimiter look-alike(s) from the text")
    suspicious = fencing.injection_sentences(cleaned)
    task = str(run.setting("task", "Summarise the text in one sentence."))
    open_marker, close_marker = fencing.make_markers()
    variables = {**run.variables(), "task": task, "open": open_marker, "close": close_marker}
    system, user = run.template.render(**{**variables, "text": cleaned})
    reply = yield from generate(run, messages_for(system, user), run.template.name, show=False)
    retried = False
    if fencing.obeyed_injection(reply, cleaned) or open_marker in reply or close_marker in reply:
        # Post-check failed: ask again with the instruction-like sentences blanked out.
        retried = True
        yield Notice("warning", "the reply followed an instruction hidden in the text; retrying with it removed")
        system, user = run.template.render(**{**variables, "text": fencing.redact_injections(cleaned)})
        reply = yield from generate(run, messages_for(system, user), f"{run.template.name} (retry)", show=False)
        if fencing.obeyed_injection(reply, cleaned):
            run.result = {"answer": "", "format_ok": False, "injection": suspicious, "retried": True}
            yield Error("the model kept following an instruction hidden in the text; no result shown",
                        "the text tries to override the task: " + "; ".join(suspicious)[:200])
            return
    if suspicious and not retried:
        yield Notice("info", "the text contains instruction-like sentences; they were treated as data")
    if run.stream:
        yield Text(reply.strip() + "\n")
    run.result = {"answer": reply.strip(), "format_ok": bool(reply.strip()), "task": task,
                  "injection": suspicious, "stripped_lookalikes": stripped, "retried": retried}


def resolve_schema(run: Run) -> dict[str, Any]:
    if run.options.get("schema"):
        return jsonout.load_schema(run.options["schema"])
    fields = run.options.get("fields") or run.template.defaults.get("fields")
    if fields:
        return jsonout.schema_from_fields(str(fields))
    if isinstance(run.template.extra.get("schema"), dict):
        return jsonout.check_schema(run.template.extra["schema"], f"{run.template.path}: schema")
    return {"type": "object"}


def _constrained(run: Run, messages: list[dict[str, str]], schema: dict[str, Any]) -> Any:
    """Grammar-constrained JSON when the backend really constrains decoding (llama.cpp); else None."""
    from assistant import constrains_json, generate_json

    if not constrains_json(run.context):
        return None

    try:
        return generate_json(run.context, messages, schema, max_tokens=int(run.setting("max_tokens", 200)),
                             temperature=0.0)
    except ValueError:  # no JSON after all: the validate-and-repair path takes over
        return None


def run_json(run: Run) -> Iterator[Event]:
    try:
        schema = resolve_schema(run)
    except jsonout.SchemaProblem as exc:
        yield Error(str(exc), "see `assistant prompt json --help` for --schema and --fields")
        return
    open_marker, close_marker = fencing.make_markers()
    cleaned, _ = fencing.strip_lookalikes(run.text)
    system, user = run.template.render(**{**run.variables(), "text": cleaned}, open=open_marker, close=close_marker,
                                       schema=json.dumps(schema, ensure_ascii=False))
    messages = messages_for(system, user)
    method, reprompts, repairs = "prompt", 0, []
    obj: Any = None
    constrained = _constrained(run, messages, schema)
    if constrained is not None:
        run.steps.append(f"### {run.template.name} (grammar-constrained decoding)\n"
                         + (run.context.state.get("last_prompt") or _render(messages)))
        run.context.state["last_prompt"] = "\n\n".join(run.steps)
        obj, method = constrained, "constrained"
        problem = jsonout.validation_error(obj, schema)
        first_try_valid = problem is None
    else:
        reply = yield from generate(run, messages, run.template.name, show=False, done=jsonout.has_complete_object)
        obj, problem = jsonout.parse_json_object(reply)
        if problem is None:
            problem = jsonout.validation_error(obj, schema)
        first_try_valid = problem is None
        for round_ in range(int(run.setting("repair_rounds", 1))):
            if problem is None:
                break
            reprompts += 1
            yield Notice("info", f"invalid JSON ({problem}); asking the model to fix it")
            messages = messages + [{"role": "assistant", "content": reply},
                                   {"role": "user", "content": f"That reply is invalid: {problem}. Reply with only the "
                                                                "corrected JSON object, valid against the schema."}]
            reply = yield from generate(run, messages, f"{run.template.name}: repair {round_ + 1}", show=False,
                                        done=jsonout.has_complete_object)
            candidate, problem = jsonout.parse_json_object(reply)
            if problem is None:
                obj = candidate
                problem = jsonout.validation_error(obj, schema)
            elif obj is None:
                obj = candidate
    if problem is not None and isinstance(obj, dict):
        # Deterministic repair only of what the model produced; never invent a whole object.
        obj, repairs = jsonout.repair(obj, schema)
        problem = jsonout.validation_error(obj, schema)
        method += "+repair"
        if problem is None:
            yield Notice("info", "repaired the JSON to fit the schema: " + "; ".join(repairs)[:300])
    if problem is not None:
        run.result = {"answer": None, "valid": False, "format_ok": False, "error": problem}
        yield Error(f"could not produce JSON valid against the schema: {problem}",
                    "try a simpler schema, a clearer text or a larger model")
        return
    run.result = {"answer": obj, "result": obj, "valid": True, "schema": schema, "method": method,
                  "first_try_valid": first_try_valid, "reprompts": reprompts, "repairs": repairs,
                  "format_ok": first_try_valid}


def _render(messages: list[dict[str, str]]) -> str:
    from assistant import render_prompt

    return render_prompt(messages)


RUNNERS: dict[str, Runner] = {
    "single": run_single,
    "few-shot": run_few_shot,
    "cot": run_cot,
    "self-consistency": run_self_consistency,
    "knowledge": run_knowledge,
    "delimit": run_delimit,
    "json": run_json,
}


def execute(run: Run) -> Iterator[Event]:
    runner = RUNNERS.get(run.template.technique)
    if runner is None:
        import difflib

        close = difflib.get_close_matches(run.template.technique, list(RUNNERS), n=1)
        raise TemplateError(f"{run.template.path}: field 'technique' is {run.template.technique!r}; "
                            + (f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(RUNNERS)}"))
    if not run.text.strip():
        yield Error(f"{run.template.name}: no text given", f"write the input after the command, e.g. /{run.template.name} TEXT")
        return
    yield from runner(run)


def result_event(run: Run) -> Data:
    return Data({"technique": run.template.technique, "template": run.template.name, **run.result})
