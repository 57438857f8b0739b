"""Prompt files: model settings, answer schema and Jinja2 templates, rendered to a `Prompt`.

Each file in `prompts/` holds one prompt: its model settings (model, temperature, token
budget), the JSON schema its answer must match, and the system and user templates, side by
side, so a change to the wording and to the settings it was tuned with is one diff.

Text from users reaches a prompt only through the `data` filter: JSON with `<`, `>` and
`&` escaped, so it can sit between delimiter tags it can never close, and the system
message can tell the model that whatever is inside is data, not instructions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# The files ship as package data of `prompts`, so an installed copy finds them as a checkout does.
PROMPTS_DIR = Path(str(resources.files("prompts")))

_NAME = re.compile(r"^[a-z0-9_]+$")
# OpenAI's rule for response_format names.
_SCHEMA_NAME = r"^[A-Za-z0-9_-]{1,64}$"
# The subset of JSON Schema that OpenAI's strict structured outputs accept, by type. Length
# limits on strings are not in it: they are stated in the prompt and checked on the answer.
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_COMMON_KEYWORDS = frozenset({"type", "description", "enum"})
_KEYWORDS = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "string": frozenset({"pattern", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset(),
    "null": frozenset(),
}
# Characters escaped inside `data` so user text can never form a tag of the prompt.
_DATA_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class PromptError(Exception):
    """A prompt file is missing or invalid, or a render lacked a variable it uses."""


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One chat message of a rendered prompt."""

    role: Literal["system", "user"]
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered prompt, independent of any LLM vendor."""

    name: str
    model: str | None  # None: the LLM's configured default (OPENAI_MODEL)
    temperature: float | None  # None: the model's own default
    max_tokens: int
    messages: tuple[PromptMessage, ...]  # system, then user
    schema_name: str
    schema: dict[str, Any]

    @property
    def system(self) -> str:
        """The system message's text."""
        return self._text("system")

    @property
    def user(self) -> str:
        """The user message's text."""
        return self._text("user")

    def _text(self, role: str) -> str:
        return "\n\n".join(m.content for m in self.messages if m.role == role)


class _SchemaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=_SCHEMA_NAME)
    json_schema: dict[str, Any] = Field(alias="json")


class _PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    model: str | None = Field(default=None, min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int = Field(gt=0, le=32_768)
    schema_: _SchemaSpec = Field(alias="schema")
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A loaded prompt file, ready to render."""

    name: str
    description: str
    model: str | None
    temperature: float | None
    max_tokens: int
    schema_name: str
    schema: dict[str, Any]
    system: jinja2.Template
    user: jinja2.Template
    path: Path

    def render(self, **values: Any) -> Prompt:
        """The prompt with `values` filled in; PromptError if the templates use anything else."""
        try:
            system = self.system.render(**values).strip()
            user = self.user.render(**values).strip()
        except jinja2.UndefinedError as error:
            raise PromptError(f"prompt {self.name}: {error.message}") from error
        return Prompt(
            name=self.name,
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            messages=(PromptMessage("system", system), PromptMessage("user", user)),
            schema_name=self.schema_name,
            # A copy, so nothing downstream can alter the loaded template's schema.
            schema=json.loads(json.dumps(self.schema)),
        )


def data_json(value: Any) -> str:
    """`value` as indented JSON whose text cannot contain `<`, `>` or `&`.

    Those characters only ever occur inside JSON strings, where their \\u escapes decode
    to the same text, so the model reads the data intact but no delimiter tag can be
    closed or opened from within it.
    """
    return json.dumps(value, ensure_ascii=False, indent=2).translate(_DATA_ESCAPES)


def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    """The prompt `name` (the file `<name>.yml`), loaded and checked once per process."""
    return _load(name, directory.resolve())


@lru_cache(maxsize=64)
def _load(name: str, directory: Path) -> PromptTemplate:
    if not _NAME.match(name):
        raise PromptError(f"invalid prompt name {name!r}")
    path = directory / f"{name}.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PromptError(f"prompt {name}: cannot read {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise PromptError(f"prompt {name}: {path.name} is not valid YAML: {error}") from error
    try:
        spec = _PromptFile.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise PromptError(f"prompt {name}: {where}: {first['msg']}") from error
    if spec.name != name:
        raise PromptError(f"prompt {name}: the file names itself {spec.name!r}")
    problem = schema_problem(spec.schema_.json_schema)
    if problem:
        raise PromptError(f"prompt {name}: schema {problem}")
    environment = _environment()
    try:
        system = environment.from_string(spec.system)
        user = environment.from_string(spec.user)
    except jinja2.TemplateSyntaxError as error:
        raise PromptError(
            f"prompt {name}: template line {error.lineno}: {error.message}"
        ) from error
    return PromptTemplate(
        name=name,
        description=spec.description,
        model=spec.model,
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        schema_name=spec.schema_.name,
        schema=spec.schema_.json_schema,
        system=system,
        user=user,
        path=path,
    )


def schema_problem(schema: Any, where: str = "") -> str | None:
    """What keeps `schema` from being a strict structured-output schema; None if nothing.

    Strict mode wants every object closed (`additionalProperties: false`) with all its
    properties required, every array typed by `items`, and only the keywords it supports.
    """
    here = where or "root"
    if not isinstance(schema, dict):
        return f"at {here}: a schema must be a mapping"
    if not where and schema.get("type") != "object":
        return "at root: the answer must be an object"
    kind = schema.get("type")
    kinds: list[Any] = kind if isinstance(kind, list) else [kind]
    if not kinds or any(not isinstance(k, str) or k not in _TYPES for k in kinds):
        return f"at {here}: unknown type {kind!r}"
    allowed = _COMMON_KEYWORDS.union(*(_KEYWORDS[k] for k in kinds))
    unknown = sorted(set(schema) - allowed)
    if unknown:
        return f"at {here}: unsupported keyword(s) {', '.join(unknown)}"
    if "description" in schema and not isinstance(schema["description"], str):
        return f"at {here}: description must be text"
    if "enum" in schema and not (isinstance(schema["enum"], list) and schema["enum"]):
        return f"at {here}: enum must be a non-empty list"
    if "object" in kinds:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return f"at {here}: an object needs properties"
        if schema.get("additionalProperties") is not False:
            return f"at {here}: additionalProperties must be false"
        required = schema.get("required")
        if not isinstance(required, list) or sorted(map(str, required)) != sorted(properties):
            return f"at {here}: required must list every property"
        for key, child in properties.items():
            problem = schema_problem(child, f"{where}.{key}" if where else key)
            if problem:
                return problem
    if "array" in kinds:
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if (
            not isinstance(low, int)
            or low < 0
            or (high is not None and (not isinstance(high, int) or high < low))
        ):
            return f"at {here}: minItems/maxItems must be counts with minItems <= maxItems"
        if "items" not in schema:
            return f"at {here}: an array needs items"
        return schema_problem(schema["items"], f"{where}[]")
    return None


def _environment() -> jinja2.Environment:
    # Prompts are not HTML: autoescape would mangle quotes; StrictUndefined turns a missing
    # variable into an error instead of a silently empty instruction.
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["data"] = _data_filter
    return environment


def _data_filter(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        # Rendering a StrictUndefined raises the usual "'x' is undefined" error.
        return str(value)
    return data_json(value)
