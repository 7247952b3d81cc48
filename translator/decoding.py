"""Request bodies → JSON values, with the rules the Messages API keeps and Python's parser does not.

Python's ``json`` accepts NaN, Infinity, numbers that overflow to infinity and lone surrogates
(``"\\ud800"``); none of them is JSON an upstream can take, so they are refused here with a 400 that
says where they are. Depth is bounded by the parser's recursion limit, and optionally by a smaller
``max_depth``. Pure: bytes in, a value or an :class:`AnthropicError` out.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

import orjson

from .errors import AnthropicError, invalid_request

# A lone surrogate can only come from a \uD800-\uDFFF escape or CESU-8 bytes; only then is
# the body checked by encoding it again.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
# orjson reads an integer past 64 bits as a float (above 2**64 - 1: 20 digits; below -2**63: a minus and
# 19): a body with such a run (found by mapping every digit to "0", "-" to itself and every other byte
# to ".", ~20x faster than a regular expression) is read by Python's parser, which keeps it whole.
_DIGITS_AS_ZEROS = bytes(48 if 48 <= byte <= 57 else byte if byte == 45 else 46 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19


class _NotJSONNumber(ValueError):
    pass


def _not_json(constant: str) -> Any:
    raise _NotJSONNumber(constant)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJSONNumber(text)
    return value


def decode_json(data: bytes, max_depth: int = 0) -> Any:
    """The JSON value of a request body; ``max_depth`` 0 means the parser's own bound only.

    Raises :class:`AnthropicError` (400 ``invalid_request_error``) naming what is wrong. orjson reads
    it first (a 1 MB body in a fifth of the time): it refuses what Python's parser would let through
    and this module refuses (NaN, infinities, lone surrogates), and gives the same values otherwise;
    whatever it refuses (or a long integer) is read by Python's parser, which says what is wrong."""
    body = _fast(data)
    if body is _REFUSED:
        body = _checked(data)
    if max_depth and depth(body) > max_depth:
        raise invalid_request(f"The request body is nested deeper than {max_depth} levels.")
    return body


_REFUSED = object()


def _fast(data: bytes) -> Any:
    digits = data.translate(_DIGITS_AS_ZEROS)
    if _NINETEEN_DIGITS in digits and (_NINETEEN_DIGITS + b"0" in digits or b"-" + _NINETEEN_DIGITS in digits):
        return _REFUSED
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _REFUSED


def _checked(data: bytes) -> Any:
    try:
        body = json.loads(data, parse_constant=_not_json, parse_float=_finite)
        if _MAYBE_SURROGATE.search(data):
            json.dumps(body, ensure_ascii=False).encode()  # raises on a lone surrogate
    except (_NotJSONNumber, UnicodeEncodeError):
        raise invalid_request(f"{_bad_value_place(data)}: not a finite JSON number or not valid Unicode text "
                              "(NaN, Infinity, out-of-range numbers and lone surrogates are refused).") from None
    except RecursionError:
        raise invalid_request("The request body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}") from None
    return body


def json_bytes(value: Any, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """``value`` as compact UTF-8 JSON, by orjson (several times faster than ``json.dumps``): the body
    sent upstream, size estimates, hashed prefixes. What orjson refuses to write (an integer past 64
    bits, a key that is not a string, a lone surrogate) is written by ``json.dumps``, as compact."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), default=default).encode()


def json_pair(key: str, text: str) -> str:
    """``json.dumps({key: text}, ensure_ascii=False)``, character for character, with the strings written
    by orjson (which escapes them as ``json`` does): a tool result's JSON for LiteLLM, which is most of
    a long turn. A lone surrogate (orjson refuses it) goes through ``json.dumps``."""
    try:
        return "{" + orjson.dumps(key).decode() + ": " + orjson.dumps(text).decode() + "}"
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps({key: text}, ensure_ascii=False)


def _bad_value_place(data: bytes) -> str:
    # Rare: parse again leniently to name the field that holds the bad value.
    try:
        return bad_value_path(json.loads(data))
    except RecursionError:
        return "(body)"


def bad_value_path(value: Any, path: str = "") -> str:
    """Where the first non-finite number or lone surrogate sits (``messages.0.content``)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where or "(body)"
        if isinstance(item, str) and not _encodes(item):
            return where or "(body)"
        if isinstance(item, dict):
            for key, inner in item.items():
                if not _encodes(key):
                    return where or "(body)"
                stack.append((inner, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}.{i}" if where else str(i)) for i, inner in enumerate(item))
    return "(body)"


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def depth(value: Any) -> int:
    """How deeply objects and arrays nest (a scalar is 1)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def input_estimate(body_bytes: int, bytes_per_token: int = 4) -> int:
    """What ``message_start`` reports as input before Gemini's count arrives: the request size / 4
    (an int; raises nothing)."""
    return body_bytes // bytes_per_token


__all__ = ["AnthropicError", "decode_json", "depth", "bad_value_path", "input_estimate", "json_bytes", "json_pair"]
