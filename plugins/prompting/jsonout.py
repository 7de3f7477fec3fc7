"""JSON output that always validates: schemas, parsing, validation and repair."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from assistant import UserError, read_text

TYPE_NAMES = {
    "string": {"type": "string"}, "str": {"type": "string"}, "text": {"type": "string"},
    "integer": {"type": "integer"}, "int": {"type": "integer"},
    "number": {"type": "number"}, "float": {"type": "number"},
    "boolean": {"type": "boolean"}, "bool": {"type": "boolean"},
    "list": {"type": "array", "items": {"type": "string"}},
    "array": {"type": "array", "items": {"type": "string"}},
    "string[]": {"type": "array", "items": {"type": "string"}},
    "integer[]": {"type": "array", "items": {"type": "integer"}},
    "int[]": {"type": "array", "items": {"type": "integer"}},
    "number[]": {"type": "array", "items": {"type": "number"}},
}


class SchemaProblem(UserError, ValueError):
    """A schema that cannot be used; the message names the file/option and the field."""


def schema_from_fields(spec: str) -> dict[str, Any]:
    """'name:string,age:int,tags:list' -> an object schema with every field required."""
    properties: dict[str, Any] = {}
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        name, _, kind = part.partition(":")
        name, kind = name.strip(), (kind.strip().lower() or "string")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ -]*", name):
            raise SchemaProblem(f"--fields: field name {name!r} is not a plain name")
        if kind not in TYPE_NAMES:
            close = difflib.get_close_matches(kind, list(TYPE_NAMES), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; use one of {', '.join(sorted(TYPE_NAMES))}"
            raise SchemaProblem(f"--fields: field '{name}' has unknown type {kind!r}{hint}")
        properties[name] = dict(TYPE_NAMES[kind])
    if not properties:
        raise SchemaProblem("--fields: no fields given; write e.g. --fields name:string,age:integer")
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def check_schema(schema: Any, where: str) -> dict[str, Any]:
    """The schema if it is a valid JSON Schema for an object; SchemaProblem otherwise."""
    from jsonschema import exceptions, validators

    if not isinstance(schema, dict):
        raise SchemaProblem(f"{where}: the schema must be a JSON object, not {type(schema).__name__}")
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        field = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise SchemaProblem(f"{where}: field '{field}' is not valid JSON Schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise SchemaProblem(f"{where}: field 'type' must be \"object\" (results are JSON objects)")
    return schema


def load_schema(path: str | Path) -> dict[str, Any]:
    file = Path(path).expanduser()
    raw = read_text(file, SchemaProblem)
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SchemaProblem(f"{file}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    return check_schema(schema, str(file))


def validation_error(obj: Any, schema: dict[str, Any]) -> str | None:
    """None if obj validates; else one line naming the field and the problem."""
    from jsonschema import validators

    validator = validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return None
    problems = []
    for error in errors[:3]:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":  # name the missing field itself
            missing = re.search(r"'([^']+)' is a required property", error.message)
            problems.append(f"field '{'/'.join(path + [missing.group(1) if missing else '?'])}': missing (required)")
        else:
            problems.append(f"field '{'/'.join(path) or '(top level)'}': {error.message}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(problems) + more


# -- parsing model output -------------------------------------------------

def _balanced_object(text: str) -> str | None:
    start = text.find("{")
    while start != -1:
        depth, in_string, escape = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                escape = (ch == "\\") and not escape
                if ch == '"' and not escape:
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        # Unclosed: return the rest, the lenient parser may close it.
        return text[start:]
    return None


def has_complete_object(text: str) -> bool:
    """True once the text holds a closed, parseable JSON object (generation may stop there)."""
    candidate = _balanced_object(re.sub(r"```(?:json)?", "", text))
    if not candidate or not candidate.rstrip().endswith("}"):
        return False
    try:
        json.loads(candidate)
        return True
    except json.JSONDecodeError:
        return False


def _lenient(candidate: str) -> Any:
    fixed = candidate.strip()
    if "'" in fixed and '"' not in fixed:  # Python-style quotes
        fixed = fixed.replace("'", '"')
    fixed = re.sub(r",\s*([}\]])", r"\1", fixed)                      # trailing commas
    fixed = re.sub(r"(?<=[{,])\s*([A-Za-z_][\w ]*)\s*:", r'"\1":', fixed)  # unquoted keys
    fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed)))
    opened = fixed.count("{") - fixed.count("}")
    if opened > 0:  # cut off by max_tokens: drop a dangling pair and close the object
        fixed = re.sub(r',?\s*"[^"]*"?\s*:?\s*"?[^",{}]*$', "", fixed) + "}" * opened
    return json.loads(fixed)


def parse_json_object(text: str) -> tuple[Any, str | None]:
    """(object or None, problem): the first JSON object in a model reply."""
    text = re.sub(r"```(?:json)?", "", text)
    candidate = _balanced_object(text)
    if candidate is None:
        return None, "the reply contains no JSON object"
    try:
        return json.loads(candidate), None
    except json.JSONDecodeError as exc:
        try:
            return _lenient(candidate), None
        except (json.JSONDecodeError, ValueError):
            return None, f"the reply is not valid JSON ({exc.msg} at column {exc.colno})"


# -- deterministic repair ---------------------------------------------------

_ZERO = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}, "null": None}


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return kind
    if kind:
        return [kind]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [t for sub in schema[key] if isinstance(sub, dict) for t in _types(sub)]
    return []


def _coerce(value: Any, schema: dict[str, Any], repairs: list[str], where: str) -> Any:
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        options = schema["enum"]
        if value in options:
            return value
        text = str(value).lower()
        match = next((o for o in options if str(o).lower() == text), None)
        if match is None:
            close = difflib.get_close_matches(text, [str(o).lower() for o in options], n=1, cutoff=0.0)
            match = next(o for o in options if str(o).lower() == close[0]) if close else options[0]
        repairs.append(f"{where}: {value!r} -> enum value {match!r}")
        return match
    types = _types(schema)
    if not types:
        return value
    if value is None and "null" in types:
        return None
    kind = types[0] if not any(_is(value, t) for t in types) else next(t for t in types if _is(value, t))
    if _is(value, kind):
        if kind == "object":
            return _coerce_object(value, schema, repairs, where)
        if kind == "array":
            items = schema.get("items", {})
            return [_coerce(v, items, repairs, f"{where}[{i}]") for i, v in enumerate(value)] if isinstance(items, dict) else value
        return value
    new = _convert(value, kind, schema)
    repairs.append(f"{where}: {value!r} -> {new!r}")
    return new


def _is(value: Any, kind: str) -> bool:
    return {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }.get(kind, False)


def _convert(value: Any, kind: str, schema: dict[str, Any]) -> Any:
    if kind == "string":
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else str(value)
    if kind in ("integer", "number"):
        found = re.search(r"-?\d[\d,]*(?:\.\d+)?", str(value)) if value is not None else None
        if not found:
            return 0
        number = float(found.group(0).replace(",", ""))
        return int(round(number)) if kind == "integer" else number
    if kind == "boolean":
        return str(value).strip().lower() in ("true", "yes", "y", "1", "on")
    if kind == "array":
        items = schema.get("items", {}) if isinstance(schema.get("items"), dict) else {}
        if value is None or value == "":
            return []
        parts = value if isinstance(value, list) else [p.strip() for p in re.split(r"[,;]", str(value))] if isinstance(value, str) else [value]
        return [_coerce(p, items, [], "") for p in parts if p != ""]
    if kind == "object":
        return _coerce_object({}, schema, [], "")
    return _ZERO.get(kind)


def _coerce_object(obj: dict[str, Any], schema: dict[str, Any], repairs: list[str], where: str) -> dict[str, Any]:
    properties = schema.get("properties", {})
    out: dict[str, Any] = {}
    used: set[str] = set()
    lowered = {str(k).lower().replace(" ", "_"): k for k in obj}
    for name, sub in properties.items():
        key = name if name in obj else lowered.get(name.lower().replace(" ", "_"))
        path = f"{where}/{name}" if where else name
        if key is not None:
            if key != name:
                repairs.append(f"{path}: renamed from {key!r}")
            used.add(key)
            out[name] = _coerce(obj[key], sub, repairs, path)
        elif name in schema.get("required", []):
            if "default" in sub:
                out[name] = sub["default"]
            else:
                types = _types(sub)
                out[name] = None if "null" in types else _coerce(None, sub, [], path) if types or "enum" in sub else None
            repairs.append(f"{path}: missing, filled with {out[name]!r}")
    extra = schema.get("additionalProperties", True)
    for key, value in obj.items():
        if key in used:
            continue
        if extra is False:
            repairs.append(f"{where or '(top level)'}: dropped unknown field {key!r}")
        else:
            out[key] = value
    return out


def repair(obj: Any, schema: dict[str, Any]) -> tuple[Any, list[str]]:
    """A deterministic best effort to make obj validate: coerce types, fill required
    fields, drop unknown ones, snap enums. Returns (object, what was changed)."""
    repairs: list[str] = []
    if not isinstance(obj, dict):
        repairs.append(f"(top level): {type(obj).__name__} replaced by an object")
        obj = {}
    return _coerce_object(obj, schema, repairs, ""), repairs
