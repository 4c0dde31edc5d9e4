"""Line numbers for JSON paths, so errors can say where in a file the bad field is.

``json`` gives no positions, so :func:`line_index` walks the text once with a small recursive-descent scanner
and records the line on which every value starts, keyed by its path (``("training", "config", "epochs")``).
"""

from __future__ import annotations

import json
import json.decoder
import re
from typing import Any

PathKey = tuple[str | int, ...]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS = ("true", "false", "null")


def format_path(path: PathKey) -> str:
    """``("base_models", 0, "name")`` -> ``base_models[0].name``; the empty path is ``(root)``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def line_index(text: str) -> dict[PathKey, int]:
    """Map every value's path to the 1-based line where it starts; ``{}`` when the text is not valid JSON."""
    lines: dict[PathKey, int] = {}
    try:
        _Scanner(text, lines).value(0, ())
    except (ValueError, IndexError, RecursionError):
        return {}
    return lines


def line_for(lines: dict[PathKey, int], path: PathKey) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


class _Scanner:
    def __init__(self, text: str, lines: dict[PathKey, int]) -> None:
        self.text = text
        self.lines = lines

    def skip(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def value(self, pos: int, path: PathKey) -> int:
        pos = self.skip(pos)
        self.lines[path] = self.text.count("\n", 0, pos) + 1
        char = self.text[pos]
        if char == "{":
            return self.obj(pos + 1, path)
        if char == "[":
            return self.array(pos + 1, path)
        if char == '"':
            return json.decoder.scanstring(self.text, pos + 1)[1]
        for literal in _LITERALS:
            if self.text.startswith(literal, pos):
                return pos + len(literal)
        match = _NUMBER.match(self.text, pos)
        if not match:
            raise ValueError(f"unexpected character at {pos}")
        return match.end()

    def obj(self, pos: int, path: PathKey) -> int:
        pos = self.skip(pos)
        if self.text[pos] == "}":
            return pos + 1
        while True:
            key, pos = json.decoder.scanstring(self.text, self.skip(pos) + 1)
            pos = self.skip(pos)
            if self.text[pos] != ":":
                raise ValueError("expected ':'")
            pos = self.skip(self.value(pos + 1, path + (key,)))
            if self.text[pos] == "}":
                return pos + 1
            if self.text[pos] != ",":
                raise ValueError("expected ','")
            pos += 1

    def array(self, pos: int, path: PathKey) -> int:
        pos = self.skip(pos)
        if self.text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            pos = self.skip(self.value(pos, path + (index,)))
            if self.text[pos] == "]":
                return pos + 1
            if self.text[pos] != ",":
                raise ValueError("expected ','")
            pos += 1
            index += 1


def parse_json(text: str) -> Any:
    """``json.loads`` for untrusted text: every way it can fail is a ``ValueError`` with a readable reason
    (``json.JSONDecodeError`` for syntax, with its line), including nesting too deep for the parser,
    integers over Python's 4,300-digit limit, ``NaN``/``Infinity``, which JSON does not allow, and lone
    surrogates (``\\ud800``), which no UTF-8 output can carry."""
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"`{name}` is not a JSON number")

    try:
        data = json.loads(text, parse_constant=refuse_constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("it holds a lone surrogate such as `\\ud800`, which is not Unicode text") from None
    return data
