"""One clear line from a pydantic ``ValidationError``: the file, each key by its dotted path, and
for an unknown key the nearest valid one (as conda and datasette say it).

    bhhub.toml: unknown key 'mailboxes.oa.interchange.sender_idd' (did you mean 'sender_id'?)
    mappings/clearinghouses/waystar.toml: claims.max_claims_per_file must be an integer

Values are never repeated in the message: a misplaced password or member id stays out of logs.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bhhub.errors import ConfigError


class Strict(BaseModel):
    """Base of every configuration model: unknown keys and wrong types are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def validated(model: type[BaseModel], data: Any, where: str) -> Any:
    """``data`` as ``model``; ``ConfigError`` naming ``where`` and every problem at once."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, model, where) from None


def config_error(exc: ValidationError, model: type[BaseModel], where: str) -> ConfigError:
    lines = [describe(error, model) for error in exc.errors(include_input=False, include_url=False)]
    error = ConfigError(f"{where}: " + "; ".join(dict.fromkeys(lines)))
    error.problems = lines
    return error


# What a field's pattern means, for the message (pydantic would print the regular expression).
NO_OUTER_SPACES = r"^\S(.*\S)?$"
TEN_DIGITS = r"^\d{10}$"
CODE_OF_TWO = r"^[0-9A-Z]{2}$"
HTTP_URL = r"^https?://"
SECRETS = frozenset({"password", "token", "secret", "client_secret", "api_key", "passphrase", "key_passphrase"})
PATTERNS = {NO_OUTER_SPACES: "must not begin or end with a space", TEN_DIGITS: "must be 10 digits",
            CODE_OF_TWO: "must be a code of two capital letters or digits",
            HTTP_URL: "must be an http:// or https:// address"}


def describe(error: dict, model: type[BaseModel]) -> str:
    """One problem of a ValidationError, naming its key by dotted path."""
    loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
    key = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden" and loc[-1] in SECRETS:
        return (f"{key!r}: secrets are never written here (configuration is copied and committed); "
                f"name an environment variable ({loc[-1]}_env) or a file ({loc[-1]}_file) instead")
    if kind == "extra_forbidden":
        valid = valid_keys(model, loc[:-1])
        near = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else f"valid here: {', '.join(valid) or 'none'}"
        return f"unknown key {key!r} ({hint})"
    if kind == "unknown_key":  # raised by a model that splits its keys itself (a mailbox)
        ctx = error["ctx"]
        return f"unknown key {'.'.join([*loc, ctx['key']])!r} (did you mean {ctx['near']!r}?)"
    if kind == "missing":
        return f"required key {key!r} is missing"
    if not key:
        return _message(error)
    return f"{key} {_message(error)}"


def _message(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind in {"string_type", "int_type", "float_type", "bool_type", "list_type", "dict_type",
                "model_type", "date_type"}:
        return "must be " + {"string_type": "a string (in quotes)", "int_type": "an integer",
                             "float_type": "a number", "bool_type": "true or false", "list_type": "a list",
                             "dict_type": "a table", "model_type": "a table", "date_type": "a date"}[kind]
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        word = {"greater_than": "greater than", "greater_than_equal": "at least",
                "less_than": "less than", "less_than_equal": "at most"}[kind]
        limit = next(iter(ctx.values()), "")
        return f"must be {word} {limit}"
    if kind == "finite_number":  # inf or nan, which TOML allows
        return "must be a finite number"
    if kind in {"string_too_short", "string_too_long", "too_short", "too_long"}:
        return error["msg"].replace("String should", "must").replace("should", "must")
    if kind == "string_pattern_mismatch":
        return PATTERNS.get(ctx.get("pattern", ""), f"must match {ctx.get('pattern', '')}")
    message = error["msg"]
    return message.removeprefix("Value error, ")


def valid_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    """The keys a table at ``path`` inside ``model`` may have (empty when unknown)."""
    annotation: Any = model
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = _field_by_key(annotation, part)
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]  # a table of name -> entry: the name is free
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _field_by_key(model: type[BaseModel], key: str):
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X, ``Annotated[X, ...]`` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _is_union_tag(part: Any) -> bool:
    """pydantic adds the member's type to the location of an error inside a union (``str``)."""
    return isinstance(part, str) and (part in {"str", "int", "float", "bool", "list", "dict"}
                                      or part.startswith(("function-", "literal[", "list[", "dict[")))
