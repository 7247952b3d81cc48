"""The building blocks of the table models (``translator/tables.py``): :class:`Table`, :class:`Rule`,
the constrained types they share, and the JSON Schema writer that turns a model into its schema file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from types import MappingProxyType
from typing import Annotated, Any, Callable, ClassVar, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import GenerateJsonSchema, SkipJsonSchema
from pydantic_core import core_schema

@dataclass(frozen=True, eq=False)
class Rule:
    """A constraint no plain type says: checked when a table loads, and written into its JSON Schema."""

    schema: Mapping[str, Any]             # the JSON Schema keywords that say the same
    problem: Callable[[Any], str | None]  # what is wrong with a value, or None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        def checked(value: Any) -> Any:
            wrong = self.problem(value)
            if wrong:
                raise ValueError(wrong)
            return value
        return core_schema.no_info_after_validator_function(checked, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return {**handler(schema), **self.schema}


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _repeated(values: tuple) -> str | None:
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    return f"repeated items: {', '.join(twice)}" if twice else None


def _not_a_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"{value!r} is not a 'regex': {exc}"
    return None


def _missing_keys(*keys: str) -> Rule:
    return Rule({"required": list(keys)},
                lambda value: f"missing keys: {', '.join(k for k in keys if k not in value)}"
                if any(k not in value for k in keys) else None)


def _mentions(*names: str) -> Rule:
    """A template that must use each of these placeholders."""
    return Rule({"allOf": [{"pattern": re.escape("{" + n + "}")} for n in names]},
                lambda text: next((f"must contain {{{n}}}" for n in names if "{" + n + "}" not in text), None))


def _fills(*names: str) -> Rule:
    """An error whose message may use only these placeholders (the code fills them in, ``!r`` quotes one)."""
    allowed = "|".join(map(re.escape, names))
    pattern = r"^(?:[^{}]|\{\{|\}\}" + (rf"|\{{(?:{allowed})(?:!r)?\}}" if names else "") + ")*$"  # {name!r}: quoted
    return Rule({"properties": {"message": {"pattern": pattern}}},
                lambda error: None if re.fullmatch(pattern, error.message, re.DOTALL)
                else f"message may use only the placeholders {', '.join('{%s}' % n for n in names) or '(none)'}")


Frozen = Annotated[Any, AfterValidator(_freeze)]  # any YAML value, read-only
UNIQUE = Rule({"uniqueItems": True}, _repeated)
Absent = SkipJsonSchema[None]  # an optional key: absent is None, an explicit null is refused
Name = Annotated[str, StringConstraints(min_length=1)]
Regex = Annotated[str, StringConstraints(min_length=1), Rule({"format": "regex"}, _not_a_regex)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
ErrorStatus = Annotated[int, Field(ge=400, le=599)]
Role = Literal["user", "assistant", "system"]
ErrorType = Literal["invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                    "request_too_large", "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
                    "billing_error"]


def _conditions(schema: dict[str, Any], model: type[Table]) -> None:
    rules = [{"if": {"properties": {field: {"const": value}}, "required": [field]}, "then": {"required": list(needed)}}
             for field, cases in model.requires_when.items() for value, needed in cases.items()]
    if rules:
        schema["allOf"] = rules


class Table(BaseModel):
    """A table or a part of one: frozen (its mappings too), and no key the model does not name."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_conditions)
    # field → {value → fields that must be present when the field has that value}
    requires_when: ClassVar[Mapping[str, Mapping[str, tuple[str, ...]]]] = {}

    @model_validator(mode="after")
    def _checked_and_frozen(self) -> Table:
        for field, cases in self.requires_when.items():
            for needed in cases.get(getattr(self, field), ()):
                if getattr(self, needed) is None:
                    raise ValueError(f"'{needed}' is a required property when {field} is {getattr(self, field)!r}")
        for name, value in self.__dict__.items():
            if type(value) is dict:
                self.__dict__[name] = MappingProxyType(value)
        return self


class _SchemaWriter(GenerateJsonSchema):
    """Pydantic's JSON Schema, as strict as the models: constrained keys as ``propertyNames`` (not
    ``patternProperties``, which would let other keys through), no titles on fields, no null defaults."""

    def generate(self, schema: Any, mode: Any = "validation") -> dict[str, Any]:
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}

    def dict_schema(self, schema: Any) -> dict[str, Any]:
        out = super().dict_schema(schema)
        for pattern, values in out.pop("patternProperties", {}).items():
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
            out["additionalProperties"] = values
        if schema["keys_schema"]["type"] == "int":  # a YAML number key; JSON writes it as digits
            out["propertyNames"] = {"pattern": "^[0-9]+$"}
        return out

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> dict[str, Any]:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)
