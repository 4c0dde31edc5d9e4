"""The pretraining corpus: standard-library docstrings and source, generated chats, SQL, Cypher and JSON.

Everything is generated on the spot from a seed; nothing is downloaded. The stream of documents is
deterministic for a given seed and Python version (the docstrings come from the running interpreter).
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator

from .chats import chit_chat, code_task, cypher_schema_chat, docstring_chat, sql_schema_chat
from .names import NamePool
from .queries import (
    graph_schema_text,
    random_cypher,
    random_graph_schema,
    random_schema,
    random_sql,
    random_value,
    schema_ddl,
)
from .template import render_chat
from .vocab import TABLES

SKIPPED_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "venv",
                   "test", "lib2to3", "pydoc_data", "msilib", "winreg", "winsound", "msvcrt", "nturl2path"}
SUBMODULES = ["os.path", "collections.abc", "concurrent.futures", "email.message", "email.utils", "http.client",
              "http.server", "importlib.resources", "importlib.metadata", "json.decoder", "json.encoder",
              "logging.handlers", "unittest.mock", "urllib.parse", "urllib.request", "xml.etree.ElementTree",
              "xml.dom.minidom", "multiprocessing.pool", "asyncio.tasks", "asyncio.queues", "sqlite3.dbapi2"]
MAX_DOC_CHARS = 2400


def _module_names() -> list[str]:
    names = [n for n in sorted(sys.stdlib_module_names) if not n.startswith("_") and not n.startswith("xx")]
    return [n for n in names if n not in SKIPPED_MODULES] + SUBMODULES


def _import(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(name)
        except (ImportError, OSError, RuntimeError, AttributeError):  # platform-specific or broken modules
            return None


class _Elided:
    def __repr__(self) -> str:
        return "..."


def _signature(name: str, obj: object) -> str:
    """``name(params)``, where a default that is not a short literal prints as ``...``: reprs such as
    ``<object object at 0x7f..>`` or ``environ({...})`` (cgi) differ from run to run and from machine to
    machine, and would put this machine's environment variables into the corpus."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    parameters = [p.replace(default=_Elided()) if p.default is not p.empty and not _plain(p.default) else p
                  for p in signature.parameters.values()]
    return f"{name}{signature.replace(parameters=parameters)}"


def _plain(value: object) -> bool:
    if isinstance(value, (str, bytes)):
        return len(value) <= 40
    return value is None or isinstance(value, (bool, int, float))


def stdlib_texts() -> tuple[list[tuple[str, str]], list[str]]:
    """(qualified name, docstring) pairs and short pure-Python function sources, in a fixed order."""
    with warnings.catch_warnings():  # reading some members warns (typing.re is deprecated, ...)
        warnings.simplefilter("ignore")
        return _stdlib_texts()


def _stdlib_texts() -> tuple[list[tuple[str, str]], list[str]]:
    docs: list[tuple[str, str]] = []
    sources: list[str] = []
    seen: set[str] = set()
    for module_name in _module_names():
        module = _import(module_name)
        if module is None:
            continue
        for name, obj in _public_members(module_name, module):
            doc = inspect.getdoc(obj) or ""
            if len(doc) >= 40 and doc not in seen:
                seen.add(doc)
                docs.append((_signature(name, obj) if obj is not module else name, doc[:MAX_DOC_CHARS]))
            if inspect.isfunction(obj):
                try:
                    source = inspect.getsource(obj)
                except (OSError, TypeError):
                    continue
                if 3 <= source.count("\n") <= 40:
                    sources.append(textwrap.dedent(source))
    return docs + _language_reference(), sources


def _public_members(module_name: str, module: object) -> list[tuple[str, object]]:
    """The module, its public functions and classes, and the public methods of those classes."""
    public = set(getattr(module, "__all__", None) or [])
    members: list[tuple[str, object]] = [(module_name, module)]
    for attr in sorted(dir(module)):
        obj = getattr(module, attr, None) if not attr.startswith("_") else None
        if not (inspect.isroutine(obj) or inspect.isclass(obj)):
            continue
        if attr not in public and getattr(obj, "__module__", None) not in (module.__name__, module_name):
            continue
        members.append((f"{module_name}.{attr}", obj))
        if inspect.isclass(obj):
            members += [(f"{module_name}.{attr}.{m}", f) for m, f in sorted(vars(obj).items())
                        if not m.startswith("_") and inspect.isroutine(f)]
    return members


def _language_reference() -> list[tuple[str, str]]:
    """The Python language reference topics that ``help()`` shows, cut into passages of a few paragraphs."""
    topics = _import("pydoc_data.topics")
    passages: list[tuple[str, str]] = []
    for topic, text in sorted(getattr(topics, "topics", {}).items()):
        chunk = ""
        for paragraph in text.split("\n\n"):
            if len(chunk) + len(paragraph) > MAX_DOC_CHARS and chunk:
                passages.append((topic, chunk.strip()))
                chunk = ""
            chunk += paragraph + "\n\n"
        if chunk.strip():
            passages.append((topic, chunk.strip()))
    return passages


def sql_script(rng: random.Random, pool: NamePool | None = None) -> str:
    tables = random_schema(rng, pool)
    return schema_ddl(tables, rng) + "\n\n" + "\n".join(random_sql(rng, tables) for _ in range(rng.randint(2, 8)))


def cypher_script(rng: random.Random, pool: NamePool | None = None) -> str:
    schema = random_graph_schema(rng, pool)
    header = "\n".join("// " + line for line in graph_schema_text(schema, rng).splitlines())
    queries = [random_cypher(rng, schema) + rng.choice([";", ""]) for _ in range(rng.randint(2, 8))]
    return header + "\n" + "\n".join(queries)


def json_document(rng: random.Random) -> str:
    table = rng.choice(sorted(TABLES))
    def record() -> dict:
        row: dict = {"id": rng.randint(1, 9999)}
        for name, _, kind in rng.sample(TABLES[table], rng.randint(1, len(TABLES[table]))):
            raw = random_value(rng, kind).strip("'")
            row[name] = raw if kind not in ("count", "age", "year", "small", "big") else int(raw)
        return row

    data: object = [record() for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.4:
        data = {table: data, "count": len(data)}
    return json.dumps(data, indent=rng.choice([None, 2])) if rng.random() < 0.8 else json.dumps(data, indent=4)


class Corpus:
    """An endless, seeded stream of training documents drawn from weighted sources."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.docs, self.sources = stdlib_texts()
        self.rng.shuffle(self.docs)
        self.rng.shuffle(self.sources)
        self._doc_index = 0
        self._source_index = 0
        self.names = NamePool.from_texts(doc for _, doc in self.docs)
        pool = self.names
        self.kinds: list[tuple[str, float, Callable[[], str]]] = [
            ("docstring", 0.15, self._docstring),
            ("python_source", 0.04, self._python_source),
            ("docstring_chat", 0.05, lambda: render_chat(docstring_chat(self.rng, *self._next_doc()))),
            ("chit_chat", 0.10, lambda: render_chat(chit_chat(self.rng))),
            ("code_task", 0.17, lambda: render_chat(code_task(self.rng, pool))),
            ("sql_script", 0.12, lambda: sql_script(self.rng, pool)),
            ("cypher_script", 0.10, lambda: cypher_script(self.rng, pool)),
            ("sql_schema_chat", 0.11, lambda: render_chat(sql_schema_chat(self.rng, pool))),
            ("cypher_schema_chat", 0.09, lambda: render_chat(cypher_schema_chat(self.rng, pool))),
            ("json", 0.07, lambda: json_document(self.rng)),
        ]

    def _next_doc(self) -> tuple[str, str]:
        doc = self.docs[self._doc_index % len(self.docs)]
        self._doc_index += 1
        return doc

    def _docstring(self) -> str:
        name, doc = self._next_doc()
        return f"{name}\n\n{doc}"

    def _python_source(self) -> str:
        source = self.sources[self._source_index % len(self.sources)]
        self._source_index += 1
        return source

    def documents(self) -> Iterator[tuple[str, str]]:
        """Yield (kind, text) forever."""
        names = [k[0] for k in self.kinds]
        weights = [k[1] for k in self.kinds]
        makers = {k[0]: k[2] for k in self.kinds}
        while True:
            kind = self.rng.choices(names, weights)[0]
            yield kind, makers[kind]()
