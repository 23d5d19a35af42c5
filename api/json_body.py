"""What a JSON request body must be before any route reads it (``api.guard`` checks it).

A body sent as ``application/json`` (or ``*/*+json``) must be UTF-8, well-formed JSON
(RFC 8259: no ``NaN``/``Infinity``, no byte order mark, no lone surrogate escapes), nest arrays and objects at most
``MAX_NESTING`` deep and write each number in at most ``MAX_NUMBER_CHARS`` characters. Anything
else gets a 400 problem with its own code. Without these limits Python's parser would answer for
the API: a ``RecursionError`` deep down, a ``ValueError`` past 4300 digits, a JSON number of
thousands of digits that costs quadratic time to convert.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from api.errors import Problem

MAX_NESTING = 32
MAX_NUMBER_CHARS = 100


def malformed(code: str, detail: str) -> Problem:
    return Problem(400, code, detail)


def malformed_json(reason: str) -> Problem:
    return malformed("malformed_json", f"The body is not valid JSON: {reason}.")


def is_json(media_type: str) -> bool:
    """Whether a request's media type (lower case, without parameters) announces JSON."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects, counting brackets outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                break
        elif char in "]}":
            depth -= 1
    return deepest


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise malformed(
            "number_too_large",
            f"A number in the body has {len(text)} characters; at most {MAX_NUMBER_CHARS} "
            "are allowed.",
        )
    return text


def _constant(name: str) -> NoReturn:
    raise malformed_json(f"{name} is not a JSON value")


def check(body: bytes) -> Problem | None:
    """The problem with a JSON request body, or None if it is acceptable (an empty body is:
    the route decides whether it needs one)."""
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return malformed(
            "invalid_utf8", f"The body is not UTF-8: invalid byte at position {exc.start}."
        )
    if _nesting_depth(text) > MAX_NESTING:
        return malformed(
            "nesting_too_deep",
            f"Arrays and objects in the body may nest at most {MAX_NESTING} levels deep.",
        )
    try:
        parsed: Any = json.loads(
            text, parse_int=_number, parse_float=_number, parse_constant=_constant
        )
    except Problem as problem:
        return problem
    except json.JSONDecodeError as exc:
        return malformed_json(f"{exc.msg} at line {exc.lineno}, column {exc.colno}")
    except (ValueError, RecursionError) as exc:  # pragma: no cover - ruled out above
        return malformed_json(str(exc))
    if not _encodable(parsed):
        return malformed(
            "invalid_utf8",
            "The body escapes a lone surrogate (such as \\ud800), which is not a character.",
        )
    return None


def _encodable(value: Any) -> bool:
    """Whether every string (and key) is text UTF-8 can hold: a ``\\ud800`` escape alone is
    valid JSON syntax but no character, and no database could store it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_encodable(item) for item in value)
    if isinstance(value, dict):
        return all(_encodable(key) and _encodable(item) for key, item in value.items())
    return True
