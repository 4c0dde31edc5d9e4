"""The demo base's pretraining corpus (scripts/demo_base): deterministic, open-vocabulary, no NL-to-SQL pairs.

`demo_base` is loaded from scripts/demo_base by file path in this folder's conftest.py.
"""

from __future__ import annotations

import itertools
import random
import re
import sys
from pathlib import Path

import pytest
from demo_base.chats import code_task, sql_schema_chat
from demo_base.corpus import Corpus
from demo_base.names import EXCLUDED, NamePool, phrase
from demo_base.queries import random_graph_schema, random_schema
from demo_base.vocab import NODE_LABELS, TABLES

POOL = NamePool(["harbor", "vessel", "tonnage", "crew", "anchor", "voyage", "cargo", "berth"])


@pytest.fixture(scope="module")
def corpus_documents() -> list[tuple[str, str]]:
    return list(itertools.islice(Corpus(7).documents(), 400))


def test_the_corpus_is_the_same_for_the_same_seed(corpus_documents):
    assert list(itertools.islice(Corpus(7).documents(), 400)) == corpus_documents
    assert list(itertools.islice(Corpus(8).documents(), 50)) != corpus_documents[:50]


def test_the_name_pool_comes_from_the_docstrings_without_stopwords_or_keywords():
    pool = Corpus(7).names
    assert len(pool.words) > 1000
    assert not set(pool.words) & EXCLUDED
    assert all(re.fullmatch(r"[a-z]{3,11}", word) for word in pool.words)


def test_most_schemas_use_names_outside_the_fixed_domains():
    rng = random.Random(3)
    schemas = [random_schema(rng, POOL) for _ in range(200)]
    open_share = sum(not any(t.name.rstrip("s") in {n.rstrip("s") for n in TABLES} for t in tables)
                     for tables in schemas) / len(schemas)
    assert 0.45 < open_share < 0.75
    graphs = [random_graph_schema(rng, POOL) for _ in range(200)]
    assert 0.45 < sum(not set(g.labels) & set(NODE_LABELS) for g in graphs) / len(graphs) < 0.75


def test_identifiers_are_snake_case_and_questions_say_them_as_words():
    rng = random.Random(5)
    for _ in range(100):
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", POOL.identifier(rng))
        assert re.fullmatch(r"([A-Z][a-z]+)+", POOL.label(rng))
    assert phrase("hire_year") == "hire year" and phrase("FlightCrew") == "flight crew"


def test_no_chat_answers_a_natural_language_question_with_sql():
    rng = random.Random(11)
    sql_start = re.compile(r"^(SELECT|INSERT|UPDATE|DELETE|MATCH|CREATE|MERGE)\b", re.IGNORECASE)
    for _ in range(300):
        for messages in (sql_schema_chat(rng, POOL), code_task(rng, POOL)):
            question, answer = messages[-2]["content"], messages[-1]["content"]
            if sql_start.match(answer):
                assert question.startswith(("Reformat this query", "Repeat this query", "Show the CREATE TABLE"))


def test_open_vocabulary_names_reach_the_documents(corpus_documents):
    texts = "\n".join(text for kind, text in corpus_documents if kind in ("sql_script", "sql_schema_chat"))
    tables = set(re.findall(r"CREATE TABLE (\w+)", texts))
    assert len(tables - {n for n in TABLES} - {n.rstrip("s") for n in TABLES}) > 10


def test_the_corpus_depends_neither_on_the_hash_seed_nor_on_the_environment():
    import os
    import subprocess

    scripts = Path(__file__).resolve().parents[2] / "scripts"
    program = ("import hashlib\nfrom demo_base.corpus import stdlib_texts\ndocs, sources = stdlib_texts()\n"
               "text = '\\n'.join(n + d for n, d in docs) + '\\n'.join(sources)\n"
               "print(hashlib.sha256(text.encode()).hexdigest(), 'corpus-probe' in text)")
    outputs = {subprocess.run([sys.executable, "-c", program], cwd=scripts, capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed, "PROBE": f"corpus-probe-{seed}"},
                              ).stdout for seed in ("1", "2")}
    assert len(outputs) == 1 and outputs.pop().endswith(" False\n")
