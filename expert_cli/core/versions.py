"""Version ranges for ``constraints.requires``: ``expert-sql@^0.3``, ``json>=0.2,<0.4``, ``neo4j@1.x``.

A range is one or more alternatives separated by ``||``; an alternative is comparators separated by commas or
spaces, all of which must hold. Comparators: ``*``, ``1.2.3`` / ``=1.2.3``, ``>=``, ``>``, ``<=``, ``<``,
``!=``, caret ``^1.2.3`` (same major; same minor for 0.x), tilde ``~1.2.3`` (same minor) and wildcards
``1.x`` / ``1.2.*``. Missing parts count as 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from expert_cli.core.errors import UsageError
from expert_cli.core.specs import canonical_name

_COMPARATOR = re.compile(
    r"^(>=|<=|==|!=|>|<|=|\^|~)?\s*v?([0-9xX*]{1,30}(?:\.[0-9xX*]{1,30}){0,2}(?:-[0-9A-Za-z.-]+)?)$")
_MAX_DIGITS = 30  # int() refuses strings over 4,300 digits; no real version comes close
_SEMVER = re.compile(r"^([0-9]{1,30})\.([0-9]{1,30})\.([0-9]{1,30})(?:-([0-9A-Za-z.-]+))?")
_SPLIT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*?)\s*(?:@\s*|(?=[<>=!^~\s])|$)(.*)$")


def version_key(version: str) -> tuple:
    """Semver order (pre-releases before their release), falling back to plain text for odd versions."""
    match = _SEMVER.match(version)
    if not match:
        return (0, (), version)
    major, minor, patch, pre = match.groups()
    pre_key = (1,) if pre is None else (0,) + tuple(
        (0, int(p), "") if p.isdigit() and len(p) <= _MAX_DIGITS else (1, 0, p) for p in pre.split("."))
    return (1, (int(major), int(minor), int(patch), pre_key), version)


@dataclass(frozen=True)
class Requirement:
    name: str
    range: str

    def __str__(self) -> str:
        return f"{self.name}@{self.range}" if self.range != "*" else self.name

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "version": self.range, "optional": False}


def parse_requirement(text: str) -> Requirement:
    """``sql@^0.3`` -> Requirement("expert-sql", "^0.3"); a bare name accepts any version."""
    match = _SPLIT.match(text.strip())
    if not match:
        raise UsageError(f"`{text}` in `constraints.requires` is not `name[@range]`")
    name, spec = match.group(1), match.group(2).strip() or "*"
    satisfies("0.0.0", spec, source=text)  # validates the range syntax
    return Requirement(canonical_name(name), spec)


def satisfies(version: str, spec: str, source: str | None = None) -> bool:
    """Does ``version`` fall in the range ``spec``?"""
    return any(all(_holds(version, c, source or spec) for c in _comparators(alt, source or spec))
               for alt in spec.split("||"))


def _comparators(alternative: str, source: str) -> list[str]:
    parts = [p.strip() for p in re.findall(r"(?:>=|<=|==|!=|>|<|=|\^|~)?\s*[^\s,<>=!^~]+|\*", alternative)]
    if re.sub(r"[\s,]", "", "".join(parts)) != re.sub(r"[\s,]", "", alternative):
        raise _unreadable(source, alternative.strip())
    return [p for p in parts if p] or ["*"]


def _unreadable(source: str, comparator: str) -> UsageError:
    return UsageError(f"`{source}` has a version range `{comparator}` that cannot be read",
                      hint="use forms like `^0.3.0`, `>=0.2,<0.4`, `1.x` or an exact `1.2.3`")


def _holds(version: str, comparator: str, source: str) -> bool:
    if comparator in ("*", "x", "X"):
        return True
    match = _COMPARATOR.match(comparator)
    if not match:
        raise _unreadable(source, comparator)
    op, text = match.group(1) or "=", match.group(2)
    parts = text.split("-")[0].split(".")
    wild = next((i for i, p in enumerate(parts) if p in ("x", "X", "*")), None)
    if wild is not None:
        op, parts = ("^" if wild > 0 else "*"), parts[:wild]
        if op == "*":
            return True
        op = "~" if wild == 2 else "^"
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    low = version_key(".".join(map(str, numbers)) + (("-" + text.split("-", 1)[1]) if "-" in text else ""))
    have = version_key(version)
    if op in ("=", "=="):
        return have == low if len(parts) == 3 else _in(have, numbers, len(parts) - 1)
    if op in ("^", "~"):
        level = 1 if op == "~" or numbers[0] == 0 and len(parts) > 1 else 0
        return have >= low and _in(have, numbers, level)
    return {">=": have >= low, ">": have > low, "<=": have <= low, "<": have < low, "!=": have != low}[op]


def _in(have: tuple, numbers: list[int], level: int) -> bool:
    """``have`` shares ``numbers[: level + 1]`` (major, or major and minor)."""
    if have[0] != 1:
        return False
    return list(have[1][: level + 1]) == numbers[: level + 1]
