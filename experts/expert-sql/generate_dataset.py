#!/usr/bin/env python3
# ruff: noqa: SIM905  (word lists read best as split strings)
"""Generate the expert-sql dataset: a question about a small SQL schema -> one SQLite SELECT statement.

`python experts/expert-sql/generate_dataset.py` rewrites `data/{train,valid,test}.jsonl` and
`tests/test_cases.json` byte for byte (everything derives from `--seed`). Rows use the chat format
`{"messages": [system "Dialect: sql\\nSchema:\\n<CREATE TABLE ...>", user <question>, assistant <query>]}`;
test rows also carry `metric` ("sql_execution") and `setup` (CREATE TABLE + INSERT statements of a small
database on which the reference query returns rows), so every test row scores on its own.

Held out for the test split: every schema that uses a table of HELD_OUT_TABLES, and the question templates
marked with a leading `*`. The generator asserts that no test question appears in train or valid and that
every reference query runs in sqlite and returns at least one row.

RENAMED_SHARE of the training rows (drawn from their own random stream, so valid and test do not change) use
the training domains under made-up table and column names (`brastoles`, `pleamon_dracka`): a small model cannot
memorise those, so it learns to copy names from the schema and the question, which is what an unseen schema
needs. On the first demo base (900 steps, 80 test prompts) held-out-schema accuracy went from 7% to 20%.

REPHRASED_SHARE of the training rows (again from their own stream) open with other words (`Fetch ...`,
`Quick question: ...`; never the held-out templates' openings), so the model keys on the words that matter
rather than on a template's first words. With the names-from-the-prompt grammar, on the second demo base,
held-out-template accuracy went from 56% to 67% (overall 70.0% -> 73.1%). Doubling the training rows (same
steps, half the epochs) gave no measurable gain (73.8%), so the split stays at 3000 rows.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # experts/: the generators' shared code is experts/_common/

from _common.generator import (
    CITIES,
    COUNTRIES,
    COURSE_TITLES,
    DIRECTIONS,
    OPS,
    PEOPLE,
    PRODUCT_NAMES,
    TEAM_NAMES,
    WORDS,
    Example,
    assert_no_overlap,
    attribute_values,
    draw_splits,
    fresh_word,
    literal,
    made_up_word,
    mix_in_renamed,
    named,
    num,
    parse_args,
    pick_question,
    report,
    test_suite,
    text,
    unique_examples,
    write_dataset,
)
from _common.generator import Attribute as Column

ADJECTIVES = ("Silent Golden Hidden Broken Distant Crimson Frozen Gentle Lonely Secret Burning Quiet Wild "
              "Lucky Empty Bright Hollow Endless Velvet Midnight").split()
NOUNS = ("River Road Garden Mirror Storm Harbor Forest Letter Island Shadow Bridge Window Ocean Crown Valley "
         "Engine Winter Signal Lantern Compass").split()
GENRES = "drama comedy horror fantasy mystery romance thriller history".split()
STATUSES = "pending shipped delivered cancelled returned".split()
ROLES = "engineer analyst manager designer clerk technician".split()
DEPARTMENTS = "Sales Marketing Finance Legal Research Support Logistics Design Security Operations".split()
FLIGHT_CODES = [f"{a}{n}" for a in ("AB", "KL", "QF") for n in range(101, 131)]
RECIPE_NAMES = [f"{a} {b}" for a in ADJECTIVES[:10] for b in ("Soup", "Pie", "Salad")]

def titles() -> list[str]:
    return [f"{adj} {noun}" for adj in ADJECTIVES for noun in NOUNS]


@dataclass(frozen=True)
class Domain:
    table: str
    singular: str
    key: Column
    columns: tuple

    @property
    def plural(self) -> str:
        return self.table.replace("_", " ")


D = Domain
DOMAINS = [
    D("employees", "employee", text("name", PEOPLE), (
        text("city", CITIES), text("role", ROLES), num("salary", 30000, 150000, 500), num("age", 21, 65),
        num("hire_year", 1995, 2024))),
    D("products", "product", text("name", PRODUCT_NAMES), (
        text("category", "kitchen garden office toys sports".split()),
        text("color", "red blue green black white".split()), num("price", 5, 2000), num("stock", 0, 500),
        num("weight_grams", 50, 5000, 10, "weight in grams"))),
    D("books", "book", text("title", titles()), (
        text("genre", GENRES), text("language", "English French Spanish German".split()),
        num("pages", 80, 1200), num("year", 1900, 2024), num("price", 5, 80))),
    D("movies", "movie", text("title", titles()), (
        text("genre", GENRES), text("country", COUNTRIES), num("year", 1950, 2024),
        num("duration_minutes", 70, 200, phrase="duration in minutes"),
        num("budget_millions", 1, 300, phrase="budget in millions"))),
    D("students", "student", text("name", PEOPLE), (
        text("major", "biology physics history art law music".split()), text("city", CITIES),
        num("age", 17, 35), num("grade", 40, 100), num("enrollment_year", 2010, 2024))),
    D("customers", "customer", text("name", PEOPLE), (
        text("city", CITIES), text("country", COUNTRIES), num("age", 18, 90),
        num("loyalty_points", 0, 10000, 10))),
    D("orders", "order", text("order_code", [f"A{n}" for n in range(1000, 1060)]), (
        text("status", STATUSES), num("total_amount", 10, 5000), num("quantity", 1, 60),
        num("order_year", 2015, 2024))),
    D("cars", "car", text("model", [f"{w} {m}" for w in WORDS[:10] for m in ("GT", "LX", "S")]), (
        text("brand", "Toyota Ford Honda Kia Volvo Fiat".split()),
        text("fuel_type", "petrol diesel electric hybrid".split()), num("year", 2000, 2024),
        num("mileage", 0, 300000, 100), num("price", 3000, 90000, 100))),
    D("flights", "flight", text("flight_code", FLIGHT_CODES), (
        text("origin", CITIES), text("destination", CITIES),
        num("distance_km", 200, 15000, phrase="distance in km"), num("passengers", 20, 400),
        num("duration_minutes", 40, 900, phrase="duration in minutes"))),
    D("hotels", "hotel", text("name", named("Hotel {}")), (
        text("city", CITIES), text("country", COUNTRIES), num("rooms", 10, 800),
        num("price_per_night", 40, 900))),
    D("songs", "song", text("title", titles()), (
        text("genre", "pop rock jazz blues folk metal".split()),
        num("duration_seconds", 120, 420, phrase="duration in seconds"), num("year", 1960, 2024),
        num("plays", 1000, 5000000, 1000))),
    D("players", "player", text("name", PEOPLE), (
        text("position", "goalkeeper defender midfielder forward".split()), text("nationality", COUNTRIES),
        num("age", 17, 40), num("goals", 0, 300), num("height_cm", 160, 210, phrase="height in cm"))),
    D("teams", "team", text("name", TEAM_NAMES), (
        text("league", "north south east west".split()), num("founded_year", 1880, 2020),
        num("stadium_capacity", 5000, 90000, 100))),
    D("departments", "department", text("name", DEPARTMENTS), (
        text("building", "A B C D E".split()), num("budget", 10000, 900000, 1000), num("floor", 1, 40))),
    D("authors", "author", text("name", PEOPLE), (
        text("country", COUNTRIES), num("birth_year", 1900, 2000), num("books_written", 1, 90))),
    D("patients", "patient", text("name", PEOPLE), (
        text("blood_type", "A B AB O".split()), text("city", CITIES), num("age", 1, 99),
        num("weight_kg", 3, 150, phrase="weight in kg"))),
    D("doctors", "doctor", text("name", PEOPLE), (
        text("specialty", "cardiology surgery pediatrics neurology".split()), text("city", CITIES),
        num("years_experience", 1, 45), num("salary", 50000, 300000, 1000))),
    D("hospitals", "hospital", text("name", named("{} Hospital")), (
        text("city", CITIES), num("beds", 50, 2000), num("founded_year", 1850, 2020))),
    D("courses", "course", text("title", COURSE_TITLES), (
        text("level", "beginner intermediate expert".split()), num("credits", 1, 20),
        num("capacity", 10, 400))),
    D("restaurants", "restaurant", text("name", named("{} Kitchen")), (
        text("cuisine", "thai italian mexican indian".split()), text("city", CITIES), num("seats", 10, 300),
        num("average_price", 8, 150))),
    D("museums", "museum", text("name", named("{} Museum")), (
        text("city", CITIES), text("country", COUNTRIES), num("visitors_per_year", 1000, 9000000, 1000),
        num("founded_year", 1750, 2020))),
    D("ships", "ship", text("name", WORDS), (
        text("ship_type", "tanker ferry cargo cruise".split()), text("home_port", CITIES),
        num("length_m", 20, 400, phrase="length in meters"), num("crew", 3, 3000),
        num("build_year", 1960, 2024))),
    D("apartments", "apartment", text("address", [f"{n} {w} Street" for n in (3, 12, 27) for w in WORDS]), (
        text("city", CITIES), num("rooms", 1, 30), num("rent", 300, 5000, 10),
        num("area_m2", 20, 300, phrase="area in square meters"))),
    D("stores", "store", text("name", named("{} Market")), (
        text("city", CITIES), text("category", "food books toys tools".split()),
        num("revenue", 10000, 5000000, 1000), num("staff", 2, 500))),
    D("albums", "album", text("title", titles()), (
        text("genre", "pop rock jazz blues folk".split()), num("release_year", 1960, 2024),
        num("tracks", 5, 40), num("sales", 1000, 9000000, 1000))),
    D("artists", "artist", text("name", PEOPLE), (
        text("country", COUNTRIES), text("genre", "pop rock jazz folk".split()),
        num("debut_year", 1950, 2022))),
    D("airlines", "airline", text("name", named("{} Air")), (
        text("country", COUNTRIES), num("fleet_size", 5, 900), num("founded_year", 1920, 2020))),
    D("schools", "school", text("name", named("{} Academy")), (
        text("city", CITIES), num("pupils", 100, 5000), num("founded_year", 1800, 2020))),
    D("games", "game", text("title", titles()), (
        text("platform", "pc console mobile".split()), text("genre", GENRES), num("release_year", 1985, 2024),
        num("price", 1, 90))),
    D("recipes", "recipe", text("name", RECIPE_NAMES), (
        text("cuisine", "thai italian mexican french".split()),
        text("difficulty", "easy medium hard".split()),
        num("prep_minutes", 5, 240), num("calories", 100, 1500))),
    D("projects", "project", text("name", named("Project {}")), (
        text("status", "planned active finished".split()), num("budget", 5000, 2000000, 1000),
        num("start_year", 2000, 2024))),
    D("parks", "park", text("name", named("{} Park")), (
        text("city", CITIES), num("area_hectares", 1, 5000), num("visitors", 100, 900000, 100))),
]
DOMAIN = {d.table: d for d in DOMAINS}
# (parent, child): the child table gets `<parent singular>_id`.
PAIRS = [("departments", "employees"), ("customers", "orders"), ("authors", "books"), ("teams", "players"),
         ("artists", "albums"), ("schools", "students"), ("airlines", "flights"), ("hospitals", "doctors")]
HELD_OUT_TABLES = {"hospitals", "doctors", "museums", "ships", "recipes"}

AGGS = [("AVG", ("average", "mean")), ("MAX", ("maximum", "highest", "largest")),
        ("MIN", ("minimum", "lowest", "smallest")), ("SUM", ("total", "combined"))]
ORDER_WORDS = {"ASC": ("in ascending order", "from lowest to highest", "from smallest to largest"),
               "DESC": ("in descending order", "from highest to lowest", "from largest to smallest")}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}

# A leading "*" marks a template held out for the test split.
TEMPLATES = {
    "select_where": ("List the {sel} of {T} whose {cond_is}.",
                     "Which {T} have {cond_with}? Show their {sel}.",
                     "Show the {sel} of {T} with {cond_with}.",
                     "Find the {sel} of every {t} whose {cond_is}.",
                     "Get the {sel} from {T} where the {cond_is}.",
                     "*I need the {sel} of all {T} with {cond_with}."),
    "select_all": ("List the {sel} of all {T}.", "Show the {sel} of every {t}.",
                   "Return the {sel} of each {t}."),
    "count_all": ("How many {T} are there?", "Count the {T}.", "What is the total number of {T}?",
                  "Return the number of {T} in the table."),
    "count_where": ("How many {T} have {cond_with}?", "Count the {T} whose {cond_is}.",
                    "What is the number of {T} with {cond_with}?"),
    "aggregate": ("What is the {agg} {col} of {T}?", "Find the {agg} {col} among all {T}.",
                  "Compute the {agg} {col} of the {T}."),
    "aggregate_where": ("What is the {agg} {col} of {T} whose {cond_is}?",
                        "Find the {agg} {col} for {T} with {cond_with}.",
                        "Compute the {agg} {col} of {T} where the {cond_is}."),
    "top_k": ("List the {sel} of the {k} {T} with the {dir} {col}.",
              "Which {k} {T} have the {dir} {col}? Show their {sel}.",
              "Show the {sel} of the {k} {T} that have the {dir} {col}.",
              "*Name the {k} {T} with the {dir} {col}, giving their {sel}."),
    "top_1": ("Which {t} has the {dir} {col}? Give the {sel}.",
              "Find the {sel} of the {t} with the {dir} {col}.",
              "What is the {sel} of the {t} that has the {dir} {col}?"),
    "order_all": ("List the {sel} of all {T} sorted by {col} {order}.",
                  "Show the {sel} of {T} ordered by {col} {order}.",
                  "Return the {sel} of each {t}, ordered by {col} {order}."),
    "group_count": ("How many {T} are there for each {col}?", "Count the {T} per {col}.",
                    "Show each {col} with the number of {T}.", "For every {col}, how many {T} are there?"),
    "group_agg": ("What is the {agg} {ncol} of {T} for each {col}?",
                  "Show the {agg} {ncol} per {col} for {T}.",
                  "For every {col}, compute the {agg} {ncol} of the {T}."),
    "distinct": ("List the distinct {col} values of the {T}.", "What different {col} values do the {T} have?",
                 "Show every unique {col} among the {T}."),
    "prefix": ("Which {T} have a {key} starting with {x}? Show the {sel}.",
               "List the {sel} of {T} whose {key} begins with {x}.",
               "Find the {T} with a {key} that starts with the letter {x}, showing their {sel}."),
    "between": ("List the {sel} of {T} with {col} between {a} and {b}.",
                "Which {T} have a {col} from {a} to {b}? Show their {sel}.",
                "Show the {sel} of {T} whose {col} is between {a} and {b}."),
    "join_where": ("List the {sel} of {cT} whose {p} {pcol} is {v}.",
                   "Show the {sel} of {cT} that belong to the {p} with {pcol} {v}.",
                   "Which {cT} are linked to the {p} whose {pcol} is {v}? Give their {sel}."),
    "join_count": ("How many {cT} does the {p} with {pcol} {v} have?",
                   "Count the {cT} of the {p} whose {pcol} is {v}.",
                   "What is the number of {cT} belonging to the {p} with {pcol} {v}?"),
}
WEIGHTS = {"select_where": 18, "select_all": 4, "count_all": 5, "count_where": 9, "aggregate": 7,
           "aggregate_where": 7, "top_k": 8, "top_1": 5, "order_all": 5, "group_count": 6, "group_agg": 5,
           "distinct": 4, "prefix": 4, "between": 5, "join_where": 10, "join_count": 6}


@dataclass
class Table:
    domain: Domain
    columns: list
    rows: list = field(default_factory=list)
    fk: str | None = None

    @property
    def name(self) -> str:
        return self.domain.table

    def of_kind(self, kind: str) -> list:
        return [c for c in self.columns if c.kind == kind]

    def values(self, column: Column) -> list:
        return [row[column.name] for row in self.rows]

    def ddl(self) -> str:
        parts = ["id INTEGER PRIMARY KEY", f"{self.domain.key.name} TEXT"]
        parts += [f"{c.name} {'TEXT' if c.kind == 'text' else 'INTEGER'}" for c in self.columns]
        parts += [f"{self.fk} INTEGER"] if self.fk else []
        return f"CREATE TABLE {self.name} ({', '.join(parts)});"

    def insert(self) -> str:
        rows = ", ".join("(" + ", ".join(literal(v) for v in row.values()) + ")" for row in self.rows)
        return f"INSERT INTO {self.name} VALUES {rows};"


def make_table(rng: random.Random, domain: Domain, n_rows: int, parent: Table | None = None) -> Table:
    texts = [c for c in domain.columns if c.kind == "text"]
    ints = [c for c in domain.columns if c.kind == "int"]
    columns = rng.sample(texts, rng.randint(min(1, len(texts)), len(texts)))
    columns += rng.sample(ints, rng.randint(1, len(ints)))
    rng.shuffle(columns)
    table = Table(domain, columns, fk=f"{parent.domain.singular}_id" if parent else None)
    keys = rng.sample(domain.key.pool, n_rows)
    data = {c.name: attribute_values(rng, c, n_rows) for c in columns}
    for i in range(n_rows):
        row = {"id": i + 1, domain.key.name: keys[i], **{c.name: data[c.name][i] for c in columns}}
        if parent:
            row[table.fk] = rng.randint(1, len(parent.rows))
        table.rows.append(row)
    return table


def make_schema(rng: random.Random, held_out: bool) -> list:
    def allowed(*tables: str) -> bool:
        hits = sum(t in HELD_OUT_TABLES for t in tables)
        return hits > 0 if held_out else hits == 0

    shape = rng.random()
    if shape < 0.35:
        parent_name, child_name = rng.choice([p for p in PAIRS if allowed(*p)])
        parent = make_table(rng, DOMAIN[parent_name], rng.randint(4, 8))
        child = make_table(rng, DOMAIN[child_name], rng.randint(6, 10), parent)
        return [parent, child] if rng.random() < 0.5 else [child, parent]
    first = rng.choice([d.table for d in DOMAINS if allowed(d.table)])
    tables = [make_table(rng, DOMAIN[first], rng.randint(6, 10))]
    if shape >= 0.85:  # an unrelated second table the question does not use
        second = rng.choice([d.table for d in DOMAINS if d.table != first and allowed(d.table)])
        tables.append(make_table(rng, DOMAIN[second], rng.randint(6, 10)))
        rng.shuffle(tables)
    return tables


def slots_for(table: Table) -> dict:
    return {"T": table.domain.plural, "t": table.domain.singular, "key": table.domain.key.phrase}


def pick_select(rng: random.Random, table: Table, prefix: str = "") -> tuple[str, str]:
    key = table.domain.key
    if rng.random() < 0.75:
        return key.phrase, prefix + key.name
    other = rng.choice(table.columns)
    return f"{key.phrase} and {other.phrase}", f"{prefix}{key.name}, {prefix}{other.name}"


def pick_condition(rng: random.Random, table: Table, exclude: Column | None = None) -> tuple[dict, str]:
    column = rng.choice([c for c in table.columns if c is not exclude])
    if column.kind == "text":
        value = rng.choice(table.values(column))
        return {"cond_is": f"{column.phrase} is {value}", "cond_with": f"the {column.phrase} {value}"}, \
            f"{column.name} = '{value}'"
    value = rng.choice(sorted(set(table.values(column)))[1:-1])
    op, phrases = rng.choice(OPS)
    phrase = rng.choice(phrases)
    return {"cond_is": f"{column.phrase} is {phrase} {value}",
            "cond_with": f"a {column.phrase} {phrase} {value}"}, \
        f"{column.name} {op} {value}"


def pick_table(rng: random.Random, schema: list, needs: str = "int") -> Table | None:
    tables = [t for t in schema if t.of_kind(needs)]
    return rng.choice(tables) if tables else None


def find_pair(schema: list) -> tuple[Table, Table] | None:
    for child in schema:
        if child.fk:
            return next(t for t in schema if t is not child), child
    return None


def q_select_where(rng, schema):
    table = rng.choice(schema)
    sel, sel_sql = pick_select(rng, table)
    cond, where = pick_condition(rng, table)
    return {**slots_for(table), "sel": sel, **cond}, f"SELECT {sel_sql} FROM {table.name} WHERE {where}"


def q_select_all(rng, schema):
    table = rng.choice(schema)
    sel, sel_sql = pick_select(rng, table)
    return {**slots_for(table), "sel": sel}, f"SELECT {sel_sql} FROM {table.name}"


def q_count_all(rng, schema):
    table = rng.choice(schema)
    return slots_for(table), f"SELECT COUNT(*) FROM {table.name}"


def q_count_where(rng, schema):
    table = rng.choice(schema)
    cond, where = pick_condition(rng, table)
    return {**slots_for(table), **cond}, f"SELECT COUNT(*) FROM {table.name} WHERE {where}"


def q_aggregate(rng, schema, with_where: bool = False):
    table = pick_table(rng, schema)
    column = rng.choice(table.of_kind("int"))
    func, phrases = rng.choice(AGGS)
    slots = {**slots_for(table), "agg": rng.choice(phrases), "col": column.phrase}
    query = f"SELECT {func}({column.name}) FROM {table.name}"
    if not with_where:
        return slots, query
    if len(table.columns) < 2:
        return None
    cond, where = pick_condition(rng, table, exclude=column)
    return {**slots, **cond}, f"{query} WHERE {where}"


def q_aggregate_where(rng, schema):
    return q_aggregate(rng, schema, with_where=True)


def q_top(rng, schema, k: int):
    table = pick_table(rng, schema)
    column = rng.choice(table.of_kind("int"))
    direction, phrases = rng.choice(DIRECTIONS)
    sel, sel_sql = pick_select(rng, table)
    k_text = NUMBER_WORDS[k] if k in NUMBER_WORDS and rng.random() < 0.3 else str(k)
    slots = {**slots_for(table), "sel": sel, "col": column.phrase, "dir": rng.choice(phrases), "k": k_text}
    return slots, f"SELECT {sel_sql} FROM {table.name} ORDER BY {column.name} {direction} LIMIT {k}"


def q_top_k(rng, schema):
    return q_top(rng, schema, rng.randint(2, 5))


def q_top_1(rng, schema):
    return q_top(rng, schema, 1)


def q_order_all(rng, schema):
    table = pick_table(rng, schema)
    column = rng.choice(table.of_kind("int"))
    direction = rng.choice(("ASC", "DESC"))
    sel, sel_sql = pick_select(rng, table)
    slots = {**slots_for(table), "sel": sel, "col": column.phrase,
             "order": rng.choice(ORDER_WORDS[direction])}
    return slots, f"SELECT {sel_sql} FROM {table.name} ORDER BY {column.name} {direction}"


def q_group_count(rng, schema):
    table = pick_table(rng, schema, "text")
    if table is None:
        return None
    column = rng.choice(table.of_kind("text"))
    return {**slots_for(table), "col": column.phrase}, \
        f"SELECT {column.name}, COUNT(*) FROM {table.name} GROUP BY {column.name}"


def q_group_agg(rng, schema):
    table = pick_table(rng, schema, "text")
    if table is None:
        return None
    column, measure = rng.choice(table.of_kind("text")), rng.choice(table.of_kind("int"))
    func, phrases = rng.choice(AGGS)
    slots = {**slots_for(table), "col": column.phrase, "ncol": measure.phrase, "agg": rng.choice(phrases)}
    return slots, f"SELECT {column.name}, {func}({measure.name}) FROM {table.name} GROUP BY {column.name}"


def q_distinct(rng, schema):
    table = pick_table(rng, schema, "text")
    if table is None:
        return None
    column = rng.choice(table.of_kind("text"))
    return {**slots_for(table), "col": column.phrase}, f"SELECT DISTINCT {column.name} FROM {table.name}"


def q_prefix(rng, schema):
    table = rng.choice(schema)
    sel, sel_sql = pick_select(rng, table)
    letter = rng.choice(table.values(table.domain.key))[0]
    return {**slots_for(table), "sel": sel, "x": letter}, \
        f"SELECT {sel_sql} FROM {table.name} WHERE {table.domain.key.name} LIKE '{letter}%'"


def q_between(rng, schema):
    table = pick_table(rng, schema)
    column = rng.choice(table.of_kind("int"))
    values = sorted(table.values(column))
    low, high = sorted(rng.sample(range(len(values)), 2))
    sel, sel_sql = pick_select(rng, table)
    slots = {**slots_for(table), "sel": sel, "col": column.phrase, "a": values[low], "b": values[high]}
    where = f"{column.name} BETWEEN {values[low]} AND {values[high]}"
    return slots, f"SELECT {sel_sql} FROM {table.name} WHERE {where}"


def join_parts(rng, schema):
    pair = find_pair(schema)
    if pair is None:
        return None
    parent, child = pair
    linked = {row[child.fk] for row in child.rows}
    row = rng.choice([r for r in parent.rows if r["id"] in linked])
    texts = parent.of_kind("text")
    column = parent.domain.key if rng.random() < 0.7 or not texts else rng.choice(texts)
    slots = {"cT": child.domain.plural, "p": parent.domain.singular, "pcol": column.phrase,
             "v": row[column.name]}
    join = f"{child.name} JOIN {parent.name} ON {child.name}.{child.fk} = {parent.name}.id"
    return parent, child, slots, f"{join} WHERE {parent.name}.{column.name} = '{row[column.name]}'"


def q_join_where(rng, schema):
    parts = join_parts(rng, schema)
    if parts is None:
        return None
    _, child, slots, tail = parts
    sel, sel_sql = pick_select(rng, child, prefix=f"{child.name}.")
    return {**slots, "sel": sel}, f"SELECT {sel_sql} FROM {tail}"


def q_join_count(rng, schema):
    parts = join_parts(rng, schema)
    return None if parts is None else (parts[2], f"SELECT COUNT(*) FROM {parts[3]}")


INTENTS = {name: globals()[f"q_{name}"] for name in TEMPLATES}


def make_example(rng: random.Random, schema: list, mode: str) -> Example | None:
    """``mode``: "train" uses templates without `*`, "heldout" only templates with `*`, "any" all of them."""
    made = pick_question(rng, TEMPLATES, WEIGHTS, INTENTS, schema, mode)
    if made is None:
        return None
    system = "Dialect: sql\nSchema:\n" + "\n".join(t.ddl() for t in schema)
    setup = [t.ddl() for t in schema] + [t.insert() for t in schema]
    return Example(*made[:2], system, *made[2:], {"setup": setup})


def run_query(setup, query: str) -> list:
    with closing(sqlite3.connect(":memory:")) as conn:
        for statement in setup:
            conn.execute(statement)
        return conn.execute(query).fetchall()


def generate(rng: random.Random, count: int, held_out_schema: bool, mode: str, seen: set,
             new_schema: Callable[[], list] | None = None) -> list:
    """``count`` examples whose questions are not in ``seen`` (which grows); each query returns rows.
    ``new_schema`` draws each example's schema (default: ``make_schema(rng, held_out_schema)``)."""
    draw = new_schema or (lambda: make_schema(rng, held_out_schema))
    return unique_examples(count, lambda: make_example(rng, draw(), mode), seen, check=assert_returns_rows)


def assert_returns_rows(example: Example) -> None:
    result = run_query(example.test_fields["setup"], example.answer)
    assert result and result[0][0] is not None, (example.answer, result)


# RENAMED_SHARE of the training rows get made-up table and column names (see renamed_domain).
# A made-up name is never a real table name, nor its singular.
RESERVED = frozenset(DOMAIN) | {table[:-1] for table in DOMAIN if table.endswith("s")}


def renamed_domain(rng: random.Random, domain: Domain, taken: set) -> Domain:
    """The same domain (values, column kinds) under made-up table and column names: copying the names from the
    schema and question is then the only way to get them right, which is what held-out schemas need."""
    singular = fresh_word(rng, taken, RESERVED)
    used = {"id", domain.key.name}
    columns = []
    for column in domain.columns:
        name = fresh_word(rng, used, RESERVED) + (f"_{made_up_word(rng)}" if rng.random() < 0.3 else "")
        columns.append(replace(column, name=name, phrase=name.replace("_", " ")))
    return Domain(f"{singular}s", singular, domain.key, tuple(columns))


def rename_schema(rng: random.Random, schema_rng: random.Random) -> list:
    schema = make_schema(schema_rng, False)
    taken: set = set()
    by_old = {table.name: renamed_domain(rng, table.domain, taken) for table in schema}
    return [rebuild(table, by_old) for table in schema]


def rebuild(table: Table, by_old: dict) -> Table:
    domain = by_old[table.name]
    mapping = dict(zip((c.name for c in table.domain.columns), (c.name for c in domain.columns)))
    columns = [next(c for c in domain.columns if c.name == mapping[old.name]) for old in table.columns]
    fk = None
    if table.fk:
        parent = next(d for old, d in by_old.items() if DOMAIN[old].singular + "_id" == table.fk)
        fk = f"{parent.singular}_id"
    rows = [{(mapping.get(k, fk if k == table.fk else k)): v for k, v in row.items()} for row in table.rows]
    return Table(domain, columns, rows, fk)


def generate_renamed(rng: random.Random, count: int, seen: set) -> list:
    return generate(rng, count, False, "train", seen, new_schema=lambda: rename_schema(rng, rng))


REPHRASED_SHARE = 0.3  # share of training rows whose opening words are varied (see rephrase)
LEAD_VERBS = ("List", "Show", "Find", "Return", "Get")
NEW_LEADS = ("Display", "Give me", "Output", "Fetch", "Retrieve", "Print", "Provide", "Please list",
             "Please show", "Can you show", "Could you list", "Tell me")
OPENERS = ("Tell me: ", "Quick question: ", "Please answer: ", "Question: ", "Help me out: ", "One more: ")
CLOSERS = ("", "", " Thanks.", " Please.", " Thank you!")


def rephrase(rng: random.Random, question: str) -> str:
    """The same request with other opening words: a leading verb swapped (`List` -> `Fetch`) or an opener
    added, sometimes a polite closer. A model that has seen many openings keys on the words that matter
    (the columns, the comparison, the count), which is what a question worded in a new way needs."""
    verb = next((v for v in LEAD_VERBS if question.startswith(v + " ")), None)
    if verb is not None and rng.random() < 0.7:
        question = rng.choice(NEW_LEADS) + question[len(verb):]
    else:
        question = rng.choice(OPENERS) + question[0].lower() + question[1:]
    return question + rng.choice(CLOSERS)


def rephrase_rows(rng: random.Random, train: list, seen: set) -> None:
    """Rephrase ``REPHRASED_SHARE`` of ``train`` in place (skipping any that would collide with ``seen``)."""
    for index in sorted(rng.sample(range(len(train)), int(len(train) * REPHRASED_SHARE))):
        question = rephrase(rng, train[index]["messages"][1]["content"])
        if question not in seen:
            seen.add(question)
            train[index]["messages"][1]["content"] = question


def build_splits(seed: int) -> dict:
    rng = random.Random(seed)
    seen: set = set()
    splits = draw_splits(rng, lambda count, held_out, mode: generate(rng, count, held_out, mode, seen),
                         "sql_execution")
    mix_in_renamed(splits["train"], seed, lambda stream, count: generate_renamed(stream, count, seen))
    rephrase_rows(random.Random(f"{seed}-rephrased"), splits["train"], seen)  # its own stream too
    assert_no_overlap(splits["train"] + splits["valid"], splits["test"])
    return splits


KEYWORDS = ("SELECT", "DISTINCT", "COUNT", "AVG", "MAX", "MIN", "SUM", "FROM", "JOIN", "WHERE", "LIKE",
            "BETWEEN", "GROUP BY", "ORDER BY", "LIMIT")


def test_case(number: int, row: dict) -> dict:
    system, question, query = (m["content"] for m in row["messages"])
    meta = row["meta"]
    tables = [w for w in query.replace(",", " ").split() if f"CREATE TABLE {w} (" in system]
    return {
        "id": f"sql_{number:03d}", "name": f"{meta['intent']} on {', '.join(dict.fromkeys(tables))}",
        "prompt": question,
        "expected_keywords": [k for k in KEYWORDS if k in query] + list(dict.fromkeys(tables)),
        "expected_format": "sql",
        "category": "hard" if meta["held_out"] == "template" or "JOIN" in query else "basic",
        "system": system, "reference": query, "metric": "sql_execution", "setup": row["setup"],
    }


def test_cases(test: list) -> dict:
    return test_suite("expert-sql", "Held-out text-to-SQL cases (new schemas or new phrasings), scored by "
                      "sqlite execution", test, test_case)


def write_all(out: Path, seed: int) -> dict:
    splits = build_splits(seed)
    return write_dataset(out, splits, test_cases(splits["test"]))


def main() -> None:
    args = parse_args(__doc__, HERE)
    report(write_all(args.out, args.seed), args.out)


if __name__ == "__main__":
    main()
