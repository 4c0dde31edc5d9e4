"""Generated conversations: small talk, NL-to-code tasks that are not SQL/Cypher, and schema chores.

Every function returns a list of chat messages (``{"role": ..., "content": ...}``). None of them pairs a
natural-language question with the SQL or Cypher that answers it: the experts learn that mapping.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from .names import phrase
from .queries import (
    NUMERIC_KINDS,
    graph_schema_text,
    random_cypher,
    random_graph_schema,
    random_schema,
    random_sql,
    random_value,
    schema_ddl,
)
from .vocab import (
    CAPITALS,
    COLORS_OF,
    FAREWELL_REPLIES,
    FAREWELLS,
    GREETING_REPLIES,
    GREETINGS,
    SYSTEM_PROMPTS,
    TABLES,
    THANKS,
    THANKS_REPLIES,
    VALUES,
)

if TYPE_CHECKING:
    from .names import NamePool

Message = dict[str, str]


def _with_system(rng: random.Random, messages: list[Message]) -> list[Message]:
    if rng.random() < 0.6:
        return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}, *messages]
    return messages


def _fact_turn(rng: random.Random) -> tuple[str, str, str]:
    """(question, answer, reasoning) for a small fact or sum."""
    roll = rng.random()
    if roll < 0.35:
        country = rng.choice(sorted(CAPITALS))
        q = rng.choice(["What is the capital of {}?", "Which city is the capital of {}?", "Capital of {}?"])
        return q.format(country), f"The capital of {country} is {CAPITALS[country]}.", f"{country} -> {CAPITALS[country]}."
    if roll < 0.5:
        thing = rng.choice(sorted(COLORS_OF))
        return f"What color is {thing}?", f"{thing[0].upper() + thing[1:]} is usually {COLORS_OF[thing]}.", ""
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    op, word, value = rng.choice([("+", "plus", a + b), ("-", "minus", a - b), ("*", "times", a * b)])
    q = rng.choice([f"What is {a} {op} {b}?", f"What is {a} {word} {b}?", f"Compute {a} {op} {b}."])
    return q, rng.choice([f"{a} {op} {b} = {value}.", f"The answer is {value}.", str(value)]), f"{a} {op} {b} = {value}"


def chit_chat(rng: random.Random) -> list[Message]:
    """Greetings, facts, arithmetic, thanks; one to three turns."""
    messages: list[Message] = []
    if rng.random() < 0.5:
        messages += [{"role": "user", "content": rng.choice(GREETINGS)},
                     {"role": "assistant", "content": rng.choice(GREETING_REPLIES)}]
    for _ in range(rng.randint(1, 2)):
        question, answer, reasoning = _fact_turn(rng)
        messages.append({"role": "user", "content": question})
        if reasoning and rng.random() < 0.15:
            answer = f"<think>\n{reasoning}\n</think>\n\n{answer}"
        messages.append({"role": "assistant", "content": answer})
    if rng.random() < 0.3:
        pair = rng.choice([(THANKS, THANKS_REPLIES), (FAREWELLS, FAREWELL_REPLIES)])
        messages += [{"role": "user", "content": rng.choice(pair[0])},
                     {"role": "assistant", "content": rng.choice(pair[1])}]
    return _with_system(rng, messages)


def _records(rng: random.Random, pool: NamePool | None = None) -> tuple[str, list[tuple[str, str, str]]]:
    """A collection name and some of its fields: a fixed domain, or (half the time, with a pool) made up."""
    if pool is not None and rng.random() < 0.5:
        table = random_schema(rng, pool)[0]
        return table.name, table.columns[1:]
    table = rng.choice(sorted(TABLES))
    return table, rng.sample(TABLES[table], rng.randint(2, len(TABLES[table])))


def _spoken(rng: random.Random, name: str) -> str:
    """How the request names a field: in backticks, bare, or as words (`hire_year` -> hire year)."""
    return rng.choice([f"`{name}`", name, phrase(name), phrase(name)])


def _python_filter_task(rng: random.Random, pool: NamePool | None = None) -> tuple[str, str]:
    """A list-of-dicts comprehension (filter, sort, limit, aggregate) described in words."""
    name, cols = _records(rng, pool)
    numeric = [c for c in cols if c[2] in NUMERIC_KINDS] or [cols[0]]
    field, _, kind = rng.choice(numeric)
    shown = rng.choice(cols)[0]
    said_field, said_shown = _spoken(rng, field), _spoken(rng, shown)
    value = random_value(rng, kind)
    op, words = rng.choice([(">", "greater than"), ("<", "less than"), (">=", "at least"), ("==", "equal to")])
    var = name[0]
    roll = rng.random()
    if roll < 0.4:
        ask = f"the {said_shown} of every item in `{name}` whose {said_field} is {words} {value}"
        code = f'[{var}["{shown}"] for {var} in {name} if {var}["{field}"] {op} {value}]'
    elif roll < 0.7:
        n, order = rng.randint(1, 10), rng.choice([("highest", ", reverse=True"), ("lowest", "")])
        ask = f"the {n} items of `{name}` with the {order[0]} {said_field}"
        code = f'sorted({name}, key=lambda {var}: {var}["{field}"]{order[1]})[:{n}]'
    else:
        func, word = rng.choice([("sum", "total"), ("max", "largest"), ("min", "smallest"), ("len", "number")])
        if func == "len":
            ask = f"how many items in `{name}` have a {said_field} {words} {value}"
            code = f'len([{var} for {var} in {name} if {var}["{field}"] {op} {value}])'
        else:
            ask = f"the {word} {said_field} in `{name}`"
            code = f'{func}({var}["{field}"] for {var} in {name})'
    keys = ", ".join(c[0] for c in cols)
    return f"`{name}` is a Python list of dicts with keys {keys}. Write an expression for {ask}.", code


def _pandas_task(rng: random.Random, pool: NamePool | None = None) -> tuple[str, str]:
    _, cols = _records(rng, pool)
    numeric = [c[0] for c in cols if c[2] in NUMERIC_KINDS] or [cols[0][0]]
    texts = [c[0] for c in cols if c[2] not in NUMERIC_KINDS] or [cols[0][0]]
    num, text = rng.choice(numeric), rng.choice(texts)
    said_num, said_text = _spoken(rng, num), _spoken(rng, text)
    columns = f"`df` has the columns {', '.join(c[0] for c in cols)}. " if rng.random() < 0.6 else ""
    roll = rng.random()
    if roll < 0.3:
        func = rng.choice(["mean", "sum", "max", "min", "count"])
        return (f"{columns}With pandas, compute the {func} of {said_num} for each {said_text} in `df`.",
                f'df.groupby("{text}")["{num}"].{func}()')
    if roll < 0.6:
        n = rng.randint(1, 10)
        return (f"{columns}With pandas, show the top {n} rows of `df` by {said_num}.",
                f'df.sort_values("{num}", ascending=False).head({n})')
    value = random_value(rng, next(c[2] for c in cols if c[0] == num))
    return f"{columns}With pandas, keep the rows of `df` where {said_num} is above {value}.", f'df[df["{num}"] > {value}]'


def _json_task(rng: random.Random, pool: NamePool | None = None) -> tuple[str, str]:
    _, cols = _records(rng, pool)
    record = {}
    for name, _, kind in cols[: rng.randint(2, 4)]:
        raw = random_value(rng, kind).strip("'")
        record[name] = (raw.upper() == "TRUE" or raw == "1") if kind == "bool" else (
            float(raw) if "." in raw and kind in NUMERIC_KINDS else int(raw) if kind in NUMERIC_KINDS else raw)
    described = ", ".join(f"{k} {v}" for k, v in record.items())
    ask = rng.choice(["Write a JSON object with {}.", "Convert to JSON: {}.", "Give me JSON for {}."])
    return ask.format(described), json.dumps(record)


def _misc_code_task(rng: random.Random, pool: NamePool | None = None) -> tuple[str, str]:
    word = rng.choice(VALUES["product"] + VALUES["city"]).lower()
    n = rng.randint(2, 9)
    tasks = [
        (f"Write a Python function `{word}_count(items)` that returns the number of items.",
         f"def {word}_count(items):\n    return len(items)"),
        (f"Write a Python function that adds {n} to a number.", f"def add_{n}(x):\n    return x + {n}"),
        (f"Show the shell command that counts the lines of `{word}.txt`.", f"wc -l {word}.txt"),
        (f"Show the shell command that lists the files in `/tmp/{word}`.", f"ls /tmp/{word}"),
        (f"Show the shell command that searches for `{word}` in `log.txt`.", f"grep {word} log.txt"),
        (f"Give a regular expression for exactly {n} digits.", f"^\\d{{{n}}}$"),
        (f"Give a regular expression for words starting with `{word[:2]}`.", f"\\b{word[:2]}\\w*"),
        (f"Write Python that prints the numbers from 1 to {n}.", f"for i in range(1, {n + 1}):\n    print(i)"),
        (f"Reverse the string `{word}` in Python.", f'"{word}"[::-1]'),
        (f"Sort the list {[rng.randint(0, 50) for _ in range(n)]} in Python.", "sorted(numbers)"),
    ]
    question, answer = rng.choice(tasks)
    if question.startswith("Sort the list"):
        numbers = json.loads(question.split("list ")[1].split(" in")[0])
        answer = f"sorted({numbers}) == {sorted(numbers)}"
    return question, answer


def code_task(rng: random.Random, pool: NamePool | None = None) -> list[Message]:
    """One NL-to-code request outside SQL and Cypher: Python, pandas, JSON, shell, regex."""
    maker = rng.choice([_python_filter_task, _python_filter_task, _pandas_task, _json_task, _misc_code_task])
    question, answer = maker(rng, pool)
    system = rng.choice(["Dialect: python", "Dialect: json", "You are a coding assistant.", "", ""])
    if maker is _json_task:
        system = rng.choice(["Dialect: json", ""])
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return ([{"role": "system", "content": system}] if system else []) + messages


def _reformat(query: str, rng: random.Random) -> str:
    return query.lower() if rng.random() < 0.5 else " ".join(query.replace(";", "").split()) + ("" if rng.random() < 0.5 else ";")


def _chore_chat(rng: random.Random, chores: list[tuple[str, str]], query: str,
                system: Callable[[], str]) -> list[Message]:
    """One of ``chores`` (plus reformatting or repeating ``query``) under the system message ``system()``
    renders, drawn in this order so that the corpus stays the same for a seed."""
    chores = [*chores, (f"Reformat this query:\n{_reformat(query, rng)}", query),
              (f"Repeat this query exactly:\n{query}", query)]
    question, answer = rng.choice(chores)
    return [{"role": "system", "content": system()}, {"role": "user", "content": question},
            {"role": "assistant", "content": answer}]


def sql_schema_chat(rng: random.Random, pool: NamePool | None = None) -> list[Message]:
    """A `Dialect: sql` system prompt with a schema, and a chore that is not writing a query from words."""
    tables = random_schema(rng, pool)
    table = rng.choice(tables)
    columns = [c[0] for c in table.columns]
    column = rng.choice(columns[1:])
    chores = [
        (f"Which column of {rng.choice([table.name, phrase(table.name)])} holds the {phrase(column)}?", column),
        (f"Name the table that stores {phrase(table.name)}.", table.name),
        ("List the tables in the schema.", ", ".join(t.name for t in tables)),
        (f"What columns does `{table.name}` have?", ", ".join(columns)),
        (f"How many columns does {table.name} have?", str(len(columns))),
        ("How many tables are there?", str(len(tables))),
        (f"What is the type of `{table.name}.{table.columns[-1][0]}`?", table.columns[-1][1]),
        (f"Which table has the column `{table.columns[-1][0]}`?",
         ", ".join(t.name for t in tables if table.columns[-1][0] in [c[0] for c in t.columns])),
        (f"Show the CREATE TABLE statement for `{table.name}`.", schema_ddl([table], rng)),
    ]
    return _chore_chat(rng, chores, random_sql(rng, tables),
                       lambda: f"Dialect: sql\nSchema:\n{schema_ddl(tables, rng)}")


def cypher_schema_chat(rng: random.Random, pool: NamePool | None = None) -> list[Message]:
    """A `Dialect: cypher` system prompt with a graph schema, and a chore that is not text-to-Cypher."""
    schema = random_graph_schema(rng, pool)
    label = rng.choice(sorted(schema.labels))
    prop = rng.choice(schema.labels[label])[0]
    src, rel, dst, _ = rng.choice(schema.relationships)
    chores = [
        (f"Which property of {rng.choice([label, phrase(label)])} holds the {phrase(prop)}?", prop),
        (f"Which label stands for {phrase(label)}?", label),
        (f"Which relationship type goes from {src} to {dst}?",
         ", ".join(dict.fromkeys(r[1] for r in schema.relationships if r[0] == src and r[2] == dst))),
        (f"Which relationship type means {phrase(rel)}?", rel),
        ("List the node labels.", ", ".join(schema.labels)),
        ("List the relationship types.", ", ".join(dict.fromkeys(r[1] for r in schema.relationships))),
        (f"Which properties does `{label}` have?", ", ".join(p for p, _ in schema.labels[label])),
        ("Which labels does each relationship connect?",
         "\n".join(f"{r[1]}: {r[0]} -> {r[2]}" for r in schema.relationships)),
    ]
    return _chore_chat(rng, chores, random_cypher(rng, schema),
                       lambda: f"Dialect: cypher\nSchema:\n{graph_schema_text(schema, rng)}")


def docstring_chat(rng: random.Random, name: str, doc: str) -> list[Message]:
    """Ask what a standard-library object does; answer with its docstring's first paragraph."""
    first = doc.strip().split("\n\n")[0].strip()
    question = rng.choice(["What does `{}` do?", "Explain `{}` briefly.", "What is {} in Python?"]).format(name)
    return _with_system(rng, [{"role": "user", "content": question}, {"role": "assistant", "content": first}])
