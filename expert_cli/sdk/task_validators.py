"""Task validators for dataset rows: SQL (sqlglot, then sqlite), Cypher (the embedded engine), JSON, and a user's
own ``module:function``.

Each validator takes one parsed :class:`~expert_cli.training.formats.Example` plus its raw row and returns None
when the row passes, or a short reason. The schema a query runs against comes from the row: the example's own
``schema`` (instruction/multitask rows), else the ``Schema:`` part of its system message (the reference experts'
convention, ``Dialect: sql\\nSchema:\\nCREATE TABLE ...``); a row with a ``setup`` list (test rows) runs on it.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError, UsageError, require
from expert_cli.scoring.engines import QueryError, cypher_engine, cypher_keywords, run_sql
from expert_cli.training.formats import Example

Validator = Callable[[Example, dict[str, Any]], "str | None"]
BUILTIN = ("sql", "cypher", "json")
_FIELD = re.compile(r"\s*([^,()]+?)\s*\(\s*(string|integer|number|boolean)\s*\)\s*")
_NODE = re.compile(r"^\(:(\w+)\s*(?:\{(.*)\})?\)$")
_REL = re.compile(r"^\(:(\w+)\)-\[:(\w+)(?:\s*\{(.*)\})?\]->\(:(\w+)\)$")
_KUZU_TYPES = {"INTEGER": "INT64", "INT": "INT64", "FLOAT": "DOUBLE", "NUMBER": "DOUBLE", "BOOL": "BOOLEAN"}


def system_text(example: Example) -> str:
    return "\n".join(m["content"] for m in example.messages if m["role"] == "system")


def row_schema(example: Example) -> str | None:
    """The schema a row's query runs against, or None when the row has none."""
    if example.schema:
        return example.schema
    system = system_text(example)
    _, marker, schema = system.partition("Schema:")
    return schema.strip() or None if marker else None


# -- SQL ---------------------------------------------------------------------------------------------
def check_sql(example: Example, row: dict[str, Any], dialect: str = "sqlite") -> str | None:
    """Parses in ``dialect`` as one statement; with a schema (or ``setup``), runs read-only in sqlite."""
    sqlglot = require("sqlglot", "generate")
    try:
        statements = [s for s in sqlglot.parse(example.answer, read=dialect) if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        return f"SQL does not parse ({dialect}): {_parse_error(exc)}"
    if len(statements) != 1:
        return f"expected one SQL statement, found {len(statements)}"
    setup = _setup(row) or _sql_schema(example, dialect)
    if setup is None:
        return None
    query = statements[0].sql(dialect="sqlite") if dialect != "sqlite" else example.answer
    try:
        run_sql(setup, query, setup_authorizer=_setup_authorizer)
    except QueryError as exc:
        return f"SQL does not run against the row's schema: {exc.message.removeprefix('query failed: ')}"
    return None


# A row's schema and setup are untrusted text (a model wrote them): they may create tables, indexes and views and
# fill them, in memory, and nothing else (no ATTACH, which would create a file, no PRAGMA, no triggers).
_SETUP_ACTIONS = {getattr(sqlite3, name) for name in (
    "SQLITE_CREATE_TABLE", "SQLITE_CREATE_TEMP_TABLE", "SQLITE_CREATE_INDEX", "SQLITE_CREATE_TEMP_INDEX",
    "SQLITE_CREATE_VIEW", "SQLITE_CREATE_TEMP_VIEW", "SQLITE_INSERT", "SQLITE_UPDATE", "SQLITE_DELETE",
    "SQLITE_READ", "SQLITE_SELECT", "SQLITE_FUNCTION", "SQLITE_TRANSACTION", "SQLITE_REINDEX")} | {33}


def _setup_authorizer(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in _SETUP_ACTIONS else sqlite3.SQLITE_DENY


def _sql_schema(example: Example, dialect: str) -> list[str] | None:
    schema = row_schema(example)
    if schema is None:
        return None
    if dialect == "sqlite":
        return [schema]
    import sqlglot

    try:
        return [";\n".join(sqlglot.transpile(schema, read=dialect, write="sqlite"))]
    except sqlglot.errors.SqlglotError:
        return [schema]


# -- Cypher ------------------------------------------------------------------------------------------
def check_cypher(example: Example, row: dict[str, Any]) -> str | None:
    """Read-only, and runs in the embedded engine on the row's graph schema (empty); without a schema, parses."""
    if cypher_engine() is None:
        raise ExpertError("the Cypher validator needs the embedded engine `ladybug`",
                          hint="pip install 'expert-cli[eval]'")
    written = sorted(set(cypher_keywords(example.answer)) & _WRITES)
    if written:
        return f"Cypher is not read-only (uses `{written[0]}`)"
    setup = _setup(row)
    schema = row_schema(example)
    try:
        statements = tuple(setup) if setup else (cypher_setup(schema) if schema else ())
        _check_graph_setup(statements)
    except ValueError as exc:
        return f"the row's graph schema does not load: {exc}"
    connection = _GRAPH.next_connection()
    connection.execute("BEGIN TRANSACTION")  # the schema lives only as long as this row's check
    try:
        return _run_cypher(connection, statements, example.answer)
    finally:
        try:
            connection.execute("ROLLBACK")
        except RuntimeError:  # a failed statement has already rolled the transaction back
            pass


def _run_cypher(connection: Any, statements: tuple[str, ...], query: str) -> str | None:
    try:
        for statement in statements:
            connection.execute(statement)
    except RuntimeError as exc:
        return f"the row's graph schema does not load: {_first_line(exc)}"
    try:
        result = connection.execute(query)
    except RuntimeError as exc:
        message = _first_line(exc)
        if not statements and not message.startswith("Parser exception"):
            return None  # no schema to bind against: only the syntax is checked
        return f"Cypher does not run against the row's schema: {message}"
    if isinstance(result, list):
        return "expected one Cypher statement"
    return None


_WRITES = {"CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "CALL", "LOAD", "COPY", "EXPORT",
           "IMPORT", "INSTALL", "ATTACH", "USE", "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT"}


def cypher_setup(schema: str) -> tuple[str, ...]:
    """``(:Label {p: TYPE, ...})`` and ``(:A)-[:REL]->(:B)`` lines as Kuzu DDL (first property = primary key)."""
    nodes: list[str] = []
    rels: dict[str, list[str]] = {}
    for line in (part.strip() for part in schema.splitlines()):
        if node := _NODE.match(line):
            props = _properties(node.group(2) or "") or [("_id", "SERIAL")]
            columns = ", ".join(f"{name} {kind}" for name, kind in props)
            nodes.append(f"CREATE NODE TABLE {node.group(1)}({columns}, PRIMARY KEY ({props[0][0]}))")
        elif rel := _REL.match(line):
            rels.setdefault(rel.group(2), []).append(f"FROM {rel.group(1)} TO {rel.group(4)}")
        elif line:
            raise ValueError(f"unrecognised schema line `{line}`")
    return tuple(nodes) + tuple(f"CREATE REL TABLE {name}({', '.join(pairs)})" for name, pairs in rels.items())


def _properties(text: str) -> list[tuple[str, str]]:
    props = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, kind = (piece.strip() for piece in part.partition(":"))
        kind = _KUZU_TYPES.get(kind.upper() or "STRING", kind.upper() or "STRING")
        if not re.fullmatch(r"[A-Za-z_]\w*", name) or kind not in _GRAPH_TYPES:
            raise ValueError(f"unrecognised property `{part[:60]}`")
        props.append((name, kind))
    return props


_GRAPH_TYPES = {"STRING", "INT64", "INT32", "INT16", "INT8", "DOUBLE", "FLOAT", "BOOLEAN", "DATE", "TIMESTAMP",
                "SERIAL", "UINT64", "UINT32"}
_GRAPH_SETUP_REFUSED = {"COPY", "LOAD", "INSTALL", "ATTACH", "DETACH", "EXPORT", "IMPORT", "CALL", "USE", "DROP",
                        "ALTER", "CHECKPOINT"}


def _check_graph_setup(statements: tuple[str, ...]) -> None:
    """A row's graph setup (untrusted) may only create tables and data: no files, extensions or settings."""
    for statement in statements:
        words = cypher_keywords(statement)
        refused = sorted(_GRAPH_SETUP_REFUSED & set(words))
        if not words or words[0] not in ("CREATE", "UNWIND", "MATCH", "WITH") or refused:
            raise ValueError(f"setup statements may only CREATE tables and data (found `{(refused or words or ['?'])[0]}`)")


class _Graph:
    """One in-memory graph database, reused: each row's schema is created in a transaction that is rolled back.
    Rolled-back tables keep their buffer pages, so the database is replaced every ``ROWS_PER_DATABASE`` rows."""

    ROWS_PER_DATABASE = 32

    def __init__(self) -> None:
        self.uses, self.database, self.connection = 0, None, None

    def next_connection(self) -> Any:
        if self.connection is None or self.uses >= self.ROWS_PER_DATABASE:
            self.close()
            engine = cypher_engine()  # a smaller pool makes DDL 10x slower; the default size reserves 8 TiB
            self.database = engine.Database(":memory:", buffer_pool_size=256 * 2**20, max_num_threads=1,
                                            max_db_size=2**30)
            self.connection = engine.Connection(self.database)
            self.connection.set_query_timeout(2000)
            self.uses = 0
        self.uses += 1
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.database.close()
        self.database = self.connection = None


_GRAPH = _Graph()


# -- JSON --------------------------------------------------------------------------------------------
def check_json(example: Example, row: dict[str, Any]) -> str | None:
    """Valid JSON; matching the row's ``json_schema`` or its system message's ``Fields:`` line when present."""
    try:
        value = json.loads(example.answer)
    except ValueError as exc:
        return f"the answer is not valid JSON: {exc}"
    schema = row.get("json_schema") if isinstance(row.get("json_schema"), dict) else None
    if schema is None:
        fields = declared_fields(example)
        return _check_fields(value, fields) if fields is not None else None
    import jsonschema

    try:
        error = next(iter(_json_validator(json.dumps(schema, sort_keys=True)).iter_errors(value)), None)
    except jsonschema.SchemaError as exc:
        return f"the row's JSON schema is invalid: {exc.message}"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"the JSON does not match the row's schema{f' at `{where}`' if where else ''}: {error.message}"


@functools.lru_cache(maxsize=256)
def _json_validator(schema_text: str):
    import jsonschema

    schema = json.loads(schema_text)
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def declared_fields(example: Example) -> dict[str, str] | None:
    """The system message's ``Fields: name (string), age (integer)`` line as ``{name: type}``, or None."""
    line = next((ln for ln in system_text(example).splitlines() if ln.startswith("Fields:")), None)
    return dict(_FIELD.findall(line.removeprefix("Fields:"))) if line is not None else None


_JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def _check_fields(value: Any, fields: dict[str, str]) -> str | None:
    """Exactly the declared keys, each of its type or null (what a ``Fields:`` row promises)."""
    if not isinstance(value, dict):
        return f"the JSON is not an object with the row's fields ({type(value).__name__})"
    missing, extra = sorted(set(fields) - set(value)), sorted(set(value) - set(fields))
    if missing or extra:
        return f"the JSON's keys differ from the row's fields (missing {missing}, extra {extra})"
    for name, kind in fields.items():
        item = value[name]
        wrong_bool = isinstance(item, bool) and kind != "boolean"
        if item is not None and (wrong_bool or not isinstance(item, _JSON_TYPES[kind])):
            return f"field `{name}` must be {kind} or null, not {type(item).__name__}"
    return None


# -- the user's own ----------------------------------------------------------------------------------
def load_user_validator(spec: str, root: Path | None = None) -> Validator:
    """``module:function`` (the module found on the path or in the expert's folder), called as ``fn(row)``:
    None or True passes; False or a string (the reason) rejects; an exception rejects with its message."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UsageError(f"validator `{spec}` is not `module:function`", hint="e.g. `validators:check_row`")
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load validator `{spec}`: {exc}",
                         hint="put the module in the expert's folder or on PYTHONPATH") from exc

    def validate(example: Example, row: dict[str, Any]) -> str | None:
        try:
            verdict = function(row)
        except Exception as exc:  # noqa: BLE001 - the user's code: any failure rejects the row
            return f"{spec} raised {type(exc).__name__}: {exc}"
        if verdict is None or verdict is True:
            return None
        return verdict if isinstance(verdict, str) and verdict else f"{spec} rejected the row"

    return validate


def _setup(row: dict[str, Any]) -> list[str] | None:
    setup = row.get("setup")
    return setup if isinstance(setup, list) and setup and all(isinstance(s, str) for s in setup) else None


def _parse_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or [{}]
    where = f" (line {errors[0]['line']}, column {errors[0]['col']})" if "line" in errors[0] else ""
    return (errors[0].get("description") or _first_line(exc)) + where


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
