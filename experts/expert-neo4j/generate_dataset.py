#!/usr/bin/env python3
# ruff: noqa: SIM905  (word lists read best as split strings)
"""Generate the expert-neo4j dataset: a question about a small graph schema -> one Cypher query.

`python experts/expert-neo4j/generate_dataset.py` rewrites `data/{train,valid,test}.jsonl` and
`tests/test_cases.json` byte for byte (everything derives from `--seed`). Rows use the chat format
`{"messages": [system "Dialect: cypher\\nSchema:\\n(:Label {prop: TYPE, ...})\\n(:A)-[:REL]->(:B)",
               user <question>,
assistant <query>]}`; test rows also carry `metric` ("cypher_execution") and `setup`: statements that build a
small graph in the embedded engine the scorer uses (ladybug, a Kuzu-dialect Cypher database: node tables need
a DDL statement, so `setup` is written in that dialect), on which the reference query returns rows.

Held out for the test split: every schema that uses a label of HELD_OUT_LABELS, and the question templates
marked with a leading `*`. The generator asserts that no test question appears in train or valid; when
`ladybug` is installed it also runs every test reference query and asserts that it returns rows.

RENAMED_SHARE of the training rows (drawn from their own random stream, so valid and test do not change) use
graphs of the training labels under made-up names: labels `Brastole`, relationship types `PLEAMON_DRACKS`,
properties `cleajind` (the key property, `name` or `title`, and all values stay). The question speaks of
`brastoles` that `pleamon dracks` something, so a small model cannot lean on ~20 memorised labels and learns
to copy names from the schema and the question, which is what an unseen schema (`Doctor`, `Museum`) needs.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
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
    RENAMED_SHARE,  # noqa: F401  (the share of renamed rows, read by the tests)
    TEAM_NAMES,
    WORDS,
    Example,
    assert_no_overlap,
    attribute_values,
    draw_splits,
    fresh_word,
    literal,
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
from _common.generator import Attribute as Prop

ADJECTIVES = ("Silent Golden Hidden Broken Distant Crimson Frozen Gentle Lonely Secret Burning Quiet Wild "
              "Lucky Empty Bright").split()
NOUNS = "River Road Garden Mirror Storm Forest Letter Island Shadow Bridge Ocean Crown Valley".split()
TITLES = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]
GENRES = "drama comedy horror fantasy mystery romance thriller".split()
DISH_NAMES = [f"{w} {d}" for w in WORDS[:10] for d in ("Soup", "Pie", "Salad")]


@dataclass(frozen=True)
class Label:
    name: str
    singular: str
    plural: str
    key: Prop
    props: tuple


@dataclass(frozen=True)
class Rel:
    type: str
    source: str
    target: str
    verb_plural: str
    verb_singular: str


L = Label
LABELS = {lab.name: lab for lab in [
    L("Person", "person", "people", text("name", PEOPLE), (
        num("age", 18, 90), num("height_cm", 150, 210, phrase="height in cm"),
        text("nationality", COUNTRIES))),
    L("Movie", "movie", "movies", text("title", TITLES), (
        num("released", 1950, 2024, phrase="release year"), num("runtime", 70, 200), text("genre", GENRES))),
    L("City", "city", "cities", text("name", CITIES), (
        num("population", 10000, 9000000, 1000), text("country", COUNTRIES))),
    L("Company", "company", "companies", text("name", named("{} Corp")), (
        num("founded", 1900, 2023, phrase="founding year"),
        text("industry", "energy retail media banking software".split()), num("employees", 10, 90000, 10))),
    L("Book", "book", "books", text("title", TITLES), (
        num("year", 1900, 2024), num("pages", 80, 1200), text("genre", GENRES))),
    L("Author", "author", "authors", text("name", PEOPLE), (
        num("born", 1900, 2000, phrase="birth year"), text("country", COUNTRIES))),
    L("Team", "team", "teams", text("name", TEAM_NAMES), (
        num("founded", 1880, 2020, phrase="founding year"), text("league", "north south east west".split()))),
    L("Player", "player", "players", text("name", PEOPLE), (
        num("age", 17, 40), num("goals", 0, 300),
        text("position", "goalkeeper defender midfielder forward".split()))),
    L("Product", "product", "products", text("name", PRODUCT_NAMES), (
        num("price", 5, 2000), text("category", "kitchen garden office toys".split()))),
    L("Customer", "customer", "customers", text("name", PEOPLE), (
        num("age", 18, 90), num("loyalty_points", 0, 10000, 10),
        text("segment", "retail business student".split()))),
    L("Song", "song", "songs", text("title", TITLES), (
        num("year", 1960, 2024), num("duration", 120, 420),
        text("genre", "pop rock jazz blues folk".split()))),
    L("Artist", "artist", "artists", text("name", PEOPLE), (
        num("debut", 1950, 2022, phrase="debut year"), text("country", COUNTRIES))),
    L("Course", "course", "courses", text("title", COURSE_TITLES), (
        num("credits", 1, 20), text("level", "beginner intermediate expert".split()))),
    L("Student", "student", "students", text("name", PEOPLE), (
        num("age", 17, 35), text("major", "biology physics history art law".split()))),
    L("Airport", "airport", "airports", text("name", named("{} Airport")), (
        num("passengers_millions", 1, 120, phrase="passengers in millions"), text("country", COUNTRIES))),
    L("Airline", "airline", "airlines", text("name", named("{} Air")), (
        num("fleet_size", 5, 900), text("country", COUNTRIES))),
    L("Hospital", "hospital", "hospitals", text("name", named("{} Hospital")), (
        num("beds", 50, 2000), text("city", CITIES))),
    L("Doctor", "doctor", "doctors", text("name", PEOPLE), (
        num("years_experience", 1, 45),
        text("specialty", "cardiology surgery pediatrics neurology".split()))),
    L("Museum", "museum", "museums", text("name", named("{} Museum")), (
        num("founded", 1750, 2020, phrase="founding year"), text("city", CITIES))),
    L("Painting", "painting", "paintings", text("title", TITLES), (
        num("year", 1400, 2020), num("value_millions", 1, 400, phrase="value in millions"),
        text("style", "baroque cubist modern realist".split()))),
    L("Restaurant", "restaurant", "restaurants", text("name", named("{} Kitchen")), (
        num("seats", 10, 300), text("cuisine", "thai italian mexican indian".split()))),
    L("Dish", "dish", "dishes", text("name", DISH_NAMES), (
        num("price", 3, 90), num("calories", 100, 1500))),
]}
RELS = [Rel("ACTED_IN", "Person", "Movie", "acted in", "acted in"),
        Rel("DIRECTED", "Person", "Movie", "directed", "directed"),
        Rel("LIVES_IN", "Person", "City", "live in", "lives in"),
        Rel("WORKS_AT", "Person", "Company", "work at", "works at"),
        Rel("LOCATED_IN", "Company", "City", "are located in", "is located in"),
        Rel("WROTE", "Author", "Book", "wrote", "wrote"),
        Rel("PLAYS_FOR", "Player", "Team", "play for", "plays for"),
        Rel("BASED_IN", "Team", "City", "are based in", "is based in"),
        Rel("BOUGHT", "Customer", "Product", "bought", "bought"),
        Rel("PERFORMED", "Artist", "Song", "performed", "performed"),
        Rel("ENROLLED_IN", "Student", "Course", "are enrolled in", "is enrolled in"),
        Rel("FLIES_TO", "Airline", "Airport", "fly to", "flies to"),
        Rel("WORKS_IN", "Doctor", "Hospital", "work in", "works in"),
        Rel("EXHIBITS", "Museum", "Painting", "exhibit", "exhibits"),
        Rel("SERVES", "Restaurant", "Dish", "serve", "serves")]
HELD_OUT_LABELS = {"Hospital", "Doctor", "Museum", "Painting", "Restaurant", "Dish"}
FUNCTIONAL = {"LIVES_IN", "WORKS_AT", "LOCATED_IN", "PLAYS_FOR", "BASED_IN", "WORKS_IN"}  # one target each

AGGS = [("avg", ("average", "mean")), ("max", ("maximum", "highest", "largest")),
        ("min", ("minimum", "lowest", "smallest")), ("sum", ("total", "combined"))]
ORDER_WORDS = {"ASC": ("in ascending order", "from lowest to highest"),
               "DESC": ("in descending order", "from highest to lowest")}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}

# A leading "*" marks a template held out for the test split. {L} is the label, {P}/{s} its plural/singular;
# in relationship templates {A}/{a} name the source label, {B}/{b} the target and {R} the relationship type.
TEMPLATES = {
    "node_where": ("List the {sel} of {P} whose {cond_is}.",
                   "Which {P} have {cond_with}? Return their {sel}.",
                   "Find the {sel} of every {s} whose {cond_is}.",
                   "Show the {sel} of {L} nodes with {cond_with}.",
                   "*Get me the {sel} of all {P} where the {cond_is}."),
    "node_all": ("List the {sel} of all {P}.", "Return the {sel} of every {L} node.",
                 "Show the {sel} of each {s}."),
    "node_count": ("How many {P} are there?", "Count the {L} nodes.",
                   "What is the number of {P} in the graph?"),
    "node_count_where": ("How many {P} have {cond_with}?", "Count the {P} whose {cond_is}.",
                         "How many {L} nodes have {cond_with}?"),
    "node_agg": ("What is the {agg} {col} of all {P}?", "Find the {agg} {col} among the {L} nodes.",
                 "Compute the {agg} {col} of {P}."),
    "top_k": ("List the {sel} of the {k} {P} with the {dir} {col}.",
              "Which {k} {P} have the {dir} {col}? Return their {sel}.",
              "Show the {sel} of the {k} {L} nodes with the {dir} {col}."),
    "top_1": ("Which {s} has the {dir} {col}? Return the {sel}.",
              "Find the {sel} of the {s} with the {dir} {col}."),
    "order_all": ("List the {sel} of all {P} ordered by {col} {order}.",
                  "Return the {sel} of every {s} sorted by {col} {order}."),
    "distinct": ("List the distinct {col} values of the {P}.",
                 "What different {col} values do {L} nodes have?"),
    "group_count": ("How many {P} are there for each {col}?", "Count the {L} nodes per {col}."),
    "starts_with": ("Which {P} have a {key} starting with {x}? Return the {sel}.",
                    "List the {sel} of {P} whose {key} begins with {x}."),
    "rel_target": ("Which {A} {verb_pl} the {b} {v}?", "List the {akey} of {A} that {verb_pl} {v}.",
                   "Find every {a} that {verb_sg} the {b} {v}.",
                   "Return the {akey} of {A} connected to the {b} {v} by {R}.",
                   "*Show me all {A} that {verb_pl} the {b} named {v}."),
    "rel_source": ("List the {B} that {v} {verb_sg}.",
                   "Show the {bkey} of every {b} that the {a} {v} {verb_sg}.",
                   "Return the {B} linked from the {a} {v} by {R}."),
    "rel_count_group": ("For each {b}, how many {A} {verb_pl} it?", "Count the {A} per {b} through {R}.",
                        "Show every {b} {bkey} with the number of {A} that {verb_pl} it."),
    "rel_count_filter": ("How many {A} {verb_pl} the {b} {v}?", "Count the {A} that {verb_pl} the {b} {v}."),
    "rel_prop": ("Which {A} {verb_pl} {an_b} with {cond_with}?",
                 "List the {akey} of {A} that {verb_pl} {an_b} whose {cond_is}."),
}
WEIGHTS = {"node_where": 14, "node_all": 3, "node_count": 4, "node_count_where": 6, "node_agg": 6, "top_k": 6,
           "top_1": 4, "order_all": 3, "distinct": 3, "group_count": 4, "starts_with": 3, "rel_target": 14,
           "rel_source": 10, "rel_count_group": 6, "rel_count_filter": 7, "rel_prop": 5}


@dataclass
class Group:
    """The nodes of one label in one generated graph."""

    label: Label
    props: list
    var: str
    rows: list = field(default_factory=list)

    def of_kind(self, kind: str) -> list:
        return [p for p in self.props if p.kind == kind]

    def values(self, prop: Prop) -> list:
        return [row[prop.name] for row in self.rows]

    def typed(self, separator: str, text_type: str, int_type: str) -> str:
        props = [self.label.key, *self.props]
        return ", ".join(f"{p.name}{separator}{text_type if p.kind == 'text' else int_type}" for p in props)

    def describe(self) -> str:
        return f"(:{self.label.name} {{{self.typed(': ', 'STRING', 'INTEGER')}}})"

    def ddl(self) -> str:
        fields = self.typed(" ", "STRING", "INT64")
        return f"CREATE NODE TABLE {self.label.name}({fields}, PRIMARY KEY ({self.label.key.name}))"

    def create(self) -> str:
        nodes = []
        for row in self.rows:
            pairs = ", ".join(f"{k}: {literal(v)}" for k, v in row.items())
            nodes.append(f"(:{self.label.name} {{{pairs}}})")
        return "CREATE " + ", ".join(nodes)


@dataclass
class Graph:
    groups: dict
    rels: list
    edges: dict  # relationship type -> [(source key, target key)]

    def system(self) -> str:
        lines = [g.describe() for g in self.groups.values()]
        lines += [f"(:{r.source})-[:{r.type}]->(:{r.target})" for r in self.rels]
        return "Dialect: cypher\nSchema:\n" + "\n".join(lines)

    def setup(self) -> list:
        statements = [g.ddl() for g in self.groups.values()]
        statements += [f"CREATE REL TABLE {r.type}(FROM {r.source} TO {r.target})" for r in self.rels]
        statements += [g.create() for g in self.groups.values()]
        for rel in self.rels:
            pairs = ", ".join(f"{{a: {literal(a)}, b: {literal(b)}}}" for a, b in self.edges[rel.type])
            source, target = self.groups[rel.source].label.key.name, self.groups[rel.target].label.key.name
            statements.append(f"UNWIND [{pairs}] AS e MATCH (x:{rel.source} {{{source}: e.a}}), "
                              f"(y:{rel.target} {{{target}: e.b}}) CREATE (x)-[:{rel.type}]->(y)")
        return statements


def make_group(rng: random.Random, label: Label, var: str) -> Group:
    texts = [p for p in label.props if p.kind == "text"]
    ints = [p for p in label.props if p.kind == "int"]
    props = rng.sample(texts, rng.randint(0, len(texts))) + rng.sample(ints, rng.randint(1, len(ints)))
    rng.shuffle(props)
    group = Group(label, props, var)
    n = rng.randint(5, 9)
    keys = rng.sample(label.key.pool, n)
    columns = {p.name: attribute_values(rng, p, n) for p in props}
    group.rows = [{label.key.name: keys[i], **{name: values[i] for name, values in columns.items()}}
                  for i in range(n)]
    return group


def variable(label: str, taken: set) -> str:
    for size in range(1, len(label) + 1):
        if label[:size].lower() not in taken:
            return label[:size].lower()
    raise AssertionError(label)


def make_graph(rng: random.Random, held_out: bool) -> Graph:
    def allowed(rel: Rel) -> bool:
        return (rel.source in HELD_OUT_LABELS or rel.target in HELD_OUT_LABELS) == held_out

    first = rng.choice([r for r in RELS if allowed(r)])
    rels = [first]
    shape = rng.random()
    ends = {first.source, first.target}
    neighbours = [r for r in RELS if allowed(r) and r is not first and {r.source, r.target} & ends]
    if shape < 0.3 and neighbours:
        rels.append(rng.choice(neighbours))
    labels = list(dict.fromkeys(name for r in rels for name in (r.source, r.target)))
    if shape > 0.85:  # a single label, no relationships
        labels, rels = [rng.choice(labels)], []
    groups, taken = {}, set()
    for name in labels:
        var = variable(name, taken)
        taken.add(var)
        groups[name] = make_group(rng, LABELS[name], var)
    edges = {r.type: make_edges(rng, r, groups) for r in rels}
    return Graph(groups, rels, edges)


def make_edges(rng: random.Random, rel: Rel, groups: dict) -> list:
    source, target = groups[rel.source], groups[rel.target]
    targets = [row[target.label.key.name] for row in target.rows]
    edges = []
    for row in source.rows:
        count = 1 if rel.type in FUNCTIONAL else rng.randint(1, 2)
        edges += [(row[source.label.key.name], t) for t in rng.sample(targets, count)]
    return edges


def node_slots(group: Group) -> dict:
    label = group.label
    return {"L": label.name, "P": label.plural, "s": label.singular, "key": label.key.phrase}


def pick_select(rng: random.Random, group: Group) -> tuple[str, str]:
    key, var = group.label.key, group.var
    if rng.random() < 0.75:
        return key.phrase, f"{var}.{key.name}"
    other = rng.choice(group.props)
    return f"{key.phrase} and {other.phrase}", f"{var}.{key.name}, {var}.{other.name}"


def pick_condition(rng: random.Random, group: Group, must_match: dict | None = None) -> tuple[dict, str]:
    """A WHERE condition on a non-key property; when ``must_match`` is a row, that row satisfies it."""
    prop = rng.choice(group.props)
    subject = f"{group.var}.{prop.name}"
    if prop.kind == "text":
        value = must_match[prop.name] if must_match else rng.choice(group.values(prop))
        slots = {"cond_is": f"{prop.phrase} is {value}", "cond_with": f"the {prop.phrase} {value}"}
        return slots, f"{subject} = '{value}'"
    op, phrases = rng.choice(OPS)
    values = sorted(set(group.values(prop)))
    if must_match is None:
        value = rng.choice(values[1:-1])
    else:
        anchor = must_match[prop.name]
        below, above = [v for v in values if v < anchor], [v for v in values if v > anchor]
        candidates = {">": below, "<": above}.get(op, [anchor])
        if not candidates:
            op, phrases, candidates = "=", ("equal to", "exactly"), [anchor]
        value = rng.choice(candidates)
    phrase = rng.choice(phrases)
    slots = {"cond_is": f"{prop.phrase} is {phrase} {value}",
             "cond_with": f"a {prop.phrase} {phrase} {value}"}
    return slots, f"{subject} {op} {value}"


def match(group: Group) -> str:
    return f"MATCH ({group.var}:{group.label.name})"


def q_node_where(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    sel, ret = pick_select(rng, group)
    cond, where = pick_condition(rng, group)
    return {**node_slots(group), "sel": sel, **cond}, f"{match(group)} WHERE {where} RETURN {ret}"


def q_node_all(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    sel, ret = pick_select(rng, group)
    return {**node_slots(group), "sel": sel}, f"{match(group)} RETURN {ret}"


def q_node_count(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    return node_slots(group), f"{match(group)} RETURN count({group.var})"


def q_node_count_where(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    cond, where = pick_condition(rng, group)
    return {**node_slots(group), **cond}, f"{match(group)} WHERE {where} RETURN count({group.var})"


def q_node_agg(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    prop = rng.choice(group.of_kind("int"))
    func, phrases = rng.choice(AGGS)
    slots = {**node_slots(group), "agg": rng.choice(phrases), "col": prop.phrase}
    return slots, f"{match(group)} RETURN {func}({group.var}.{prop.name})"


def q_top(rng, graph, k: int):
    group = rng.choice(list(graph.groups.values()))
    prop = rng.choice(group.of_kind("int"))
    direction, phrases = rng.choice(DIRECTIONS)
    sel, ret = pick_select(rng, group)
    k_text = NUMBER_WORDS[k] if k in NUMBER_WORDS and rng.random() < 0.3 else str(k)
    slots = {**node_slots(group), "sel": sel, "col": prop.phrase, "dir": rng.choice(phrases), "k": k_text}
    return slots, f"{match(group)} RETURN {ret} ORDER BY {group.var}.{prop.name} {direction} LIMIT {k}"


def q_top_k(rng, graph):
    return q_top(rng, graph, rng.randint(2, 4))


def q_top_1(rng, graph):
    return q_top(rng, graph, 1)


def q_order_all(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    prop = rng.choice(group.of_kind("int"))
    direction = rng.choice(("ASC", "DESC"))
    sel, ret = pick_select(rng, group)
    slots = {**node_slots(group), "sel": sel, "col": prop.phrase, "order": rng.choice(ORDER_WORDS[direction])}
    return slots, f"{match(group)} RETURN {ret} ORDER BY {group.var}.{prop.name} {direction}"


def text_group(rng, graph) -> Group | None:
    groups = [g for g in graph.groups.values() if g.of_kind("text")]
    return rng.choice(groups) if groups else None


def q_distinct(rng, graph):
    group = text_group(rng, graph)
    if group is None:
        return None
    prop = rng.choice(group.of_kind("text"))
    slots = {**node_slots(group), "col": prop.phrase}
    return slots, f"{match(group)} RETURN DISTINCT {group.var}.{prop.name}"


def q_group_count(rng, graph):
    group = text_group(rng, graph)
    if group is None:
        return None
    prop = rng.choice(group.of_kind("text"))
    slots = {**node_slots(group), "col": prop.phrase}
    return slots, f"{match(group)} RETURN {group.var}.{prop.name}, count({group.var})"


def q_starts_with(rng, graph):
    group = rng.choice(list(graph.groups.values()))
    sel, ret = pick_select(rng, group)
    letter = rng.choice(group.values(group.label.key))[0]
    key = f"{group.var}.{group.label.key.name}"
    slots = {**node_slots(group), "sel": sel, "x": letter}
    return slots, f"{match(group)} WHERE {key} STARTS WITH '{letter}' RETURN {ret}"


def rel_parts(rng, graph):
    """(slots, MATCH pattern, source group, target group, edges) for a random relationship, or None."""
    if not graph.rels:
        return None
    rel = rng.choice(graph.rels)
    source, target = graph.groups[rel.source], graph.groups[rel.target]
    b = target.label.singular
    slots = {"A": source.label.plural, "a": source.label.singular, "B": target.label.plural, "b": b,
             "an_b": ("an " if b[0] in "aeiou" else "a ") + b, "R": rel.type, "verb_pl": rel.verb_plural,
             "verb_sg": rel.verb_singular, "akey": source.label.key.phrase, "bkey": target.label.key.phrase}
    pattern = f"MATCH ({source.var}:{source.label.name})-[:{rel.type}]->({target.var}:{target.label.name})"
    return slots, pattern, source, target, graph.edges[rel.type]


def q_rel_target(rng, graph, count: bool = False):
    parts = rel_parts(rng, graph)
    if parts is None:
        return None
    slots, pattern, source, target, edges = parts
    value = rng.choice(sorted({b for _, b in edges}))
    ret = f"count({source.var})" if count else f"{source.var}.{source.label.key.name}"
    where = f"{target.var}.{target.label.key.name} = '{value}'"
    return {**slots, "v": value}, f"{pattern} WHERE {where} RETURN {ret}"


def q_rel_count_filter(rng, graph):
    return q_rel_target(rng, graph, count=True)


def q_rel_source(rng, graph):
    parts = rel_parts(rng, graph)
    if parts is None:
        return None
    slots, pattern, source, target, edges = parts
    value = rng.choice(sorted({a for a, _ in edges}))
    where = f"{source.var}.{source.label.key.name} = '{value}'"
    return {**slots, "v": value}, f"{pattern} WHERE {where} RETURN {target.var}.{target.label.key.name}"


def q_rel_count_group(rng, graph):
    parts = rel_parts(rng, graph)
    if parts is None:
        return None
    slots, pattern, source, target, _ = parts
    return slots, f"{pattern} RETURN {target.var}.{target.label.key.name}, count({source.var})"


def q_rel_prop(rng, graph):
    parts = rel_parts(rng, graph)
    if parts is None:
        return None
    slots, pattern, source, target, edges = parts
    chosen = rng.choice(sorted({b for _, b in edges}))
    anchor = next(row for row in target.rows if row[target.label.key.name] == chosen)
    cond, where = pick_condition(rng, target, must_match=anchor)
    return {**slots, **cond}, f"{pattern} WHERE {where} RETURN DISTINCT {source.var}.{source.label.key.name}"


INTENTS = {name: globals()[f"q_{name}"] for name in TEMPLATES}


def make_example(rng: random.Random, graph: Graph, mode: str) -> Example | None:
    """``mode``: "train" uses templates without `*`, "heldout" only templates with `*`, "any" all of them."""
    made = pick_question(rng, TEMPLATES, WEIGHTS, INTENTS, graph, mode)
    if made is None:
        return None
    return Example(*made[:2], graph.system(), *made[2:], {"setup": graph.setup()})


def generate(rng: random.Random, count: int, held_out_schema: bool, mode: str, seen: set,
             new_graph: Callable[[], Graph] | None = None) -> list:
    """``count`` examples whose questions are not in ``seen`` (which grows). ``new_graph`` draws each
    example's graph (default: ``make_graph(rng, held_out_schema)``)."""
    draw = new_graph or (lambda: make_graph(rng, held_out_schema))
    return unique_examples(count, lambda: make_example(rng, draw(), mode), seen)


def check_with_engine(rows: list) -> None:
    """Run every test reference in ladybug when it is installed; each must return at least one row."""
    try:
        import ladybug
    except ImportError:
        return
    for row in rows:
        database = ladybug.Database(":memory:", buffer_pool_size=64 * 2**20, max_num_threads=1)
        connection = ladybug.Connection(database)
        for statement in row["setup"]:
            connection.execute(statement)
        query = row["messages"][2]["content"]
        result = connection.execute(query).get_all()
        connection.close()
        database.close()
        assert result and result[0][0] is not None, (query, result)


# RENAMED_SHARE of the training rows get made-up labels, relationship types and properties (see rename_graph),
# never a real name nor a Cypher keyword.
CYPHER_WORDS = set("match where return order limit count distinct create with union unwind optional merge "
                   "delete detach skip starts ends contains and xor not null true false case when then else "
                   "exists asc desc set remove call yield node table from primary key".split())
REAL_NAMES = ({n for lab in LABELS.values() for n in (lab.singular, lab.plural)}
              | {p.name for lab in LABELS.values() for p in (lab.key, *lab.props)}
              | {w.lower() for r in RELS for w in r.type.split("_")})
RESERVED = REAL_NAMES | CYPHER_WORDS


def renamed_label(rng: random.Random, label: Label, taken: set) -> Label:
    """The same label (key, values, property kinds) under a made-up CamelCase name and snake_case properties."""
    singular = fresh_word(rng, taken, RESERVED)
    props = []
    for prop in label.props:
        name = fresh_word(rng, taken, RESERVED)
        name += f"_{fresh_word(rng, taken, RESERVED)}" if rng.random() < 0.3 else ""
        props.append(replace(prop, name=name, phrase=name.replace("_", " ")))
    return Label(singular.capitalize(), singular, f"{singular}s", label.key, tuple(props))


def renamed_rel(rng: random.Random, rel: Rel, labels: dict, taken: set) -> Rel:
    words = [fresh_word(rng, taken, RESERVED) for _ in range(rng.randint(1, 2))]
    phrase = " ".join(words)
    return Rel("_".join(words).upper(), labels[rel.source].name, labels[rel.target].name, phrase, phrase)


def rename_graph(rng: random.Random, graph: Graph) -> Graph:
    """``graph`` with every label, relationship type and non-key property renamed; rows and edges carried over,
    variables derived from the new label names as make_graph does."""
    taken = {group.label.key.name for group in graph.groups.values()}
    labels = {old: renamed_label(rng, group.label, taken) for old, group in graph.groups.items()}
    rels = {rel.type: renamed_rel(rng, rel, labels, taken) for rel in graph.rels}
    groups, variables = {}, set()
    for old, group in graph.groups.items():
        label = labels[old]
        names = dict(zip((p.name for p in group.label.props), (p.name for p in label.props)))
        props = [next(p for p in label.props if p.name == names[prop.name]) for prop in group.props]
        var = variable(label.name, variables)
        variables.add(var)
        rows = [{names.get(k, k): v for k, v in row.items()} for row in group.rows]
        groups[label.name] = Group(label, props, var, rows)
    edges = {rels[old].type: pairs for old, pairs in graph.edges.items()}
    return Graph(groups, list(rels.values()), edges)


def generate_renamed(rng: random.Random, count: int, seen: set) -> list:
    return generate(rng, count, False, "train", seen, new_graph=lambda: rename_graph(rng, make_graph(rng, False)))


def build_splits(seed: int, engine_check: bool = True) -> dict:
    rng = random.Random(seed)
    seen: set = set()
    splits = draw_splits(rng, lambda count, held_out, mode: generate(rng, count, held_out, mode, seen),
                         "cypher_execution")
    mix_in_renamed(splits["train"], seed, lambda stream, count: generate_renamed(stream, count, seen))
    assert_no_overlap(splits["train"] + splits["valid"], splits["test"])
    if engine_check:
        check_with_engine(splits["test"])
    return splits


KEYWORDS = ("MATCH", "WHERE", "RETURN", "DISTINCT", "count(", "avg(", "max(", "min(", "sum(", "STARTS WITH",
            "ORDER BY", "LIMIT")


def test_case(number: int, row: dict) -> dict:
    system, question, query = (m["content"] for m in row["messages"])
    meta = row["meta"]
    lines = system.splitlines()
    labels = [line.split(" ")[0][2:] for line in lines if line.startswith("(:") and " {" in line]
    used = [name for name in labels if f":{name})" in query]
    rel_types = [line.split("[:")[1].split("]")[0] for line in lines if "[:" in line]
    types = [t for t in rel_types if f"[:{t}]" in query]
    return {
        "id": f"cypher_{number:03d}", "name": f"{meta['intent']} on {', '.join(used)}",
        "prompt": question,
        "expected_keywords": [k.rstrip("(") for k in KEYWORDS if k in query] + used + types,
        "expected_format": "cypher",
        "category": "hard" if meta["held_out"] == "template" or "-[:" in query else "basic",
        "system": system, "reference": query, "metric": "cypher_execution", "setup": row["setup"],
    }


def test_cases(test: list) -> dict:
    return test_suite("expert-neo4j", "Held-out text-to-Cypher cases (new graph schemas or new phrasings), "
                      "scored by execution in an embedded Cypher engine (ladybug), else by exact structure",
                      test, test_case, engine="ladybug (Kuzu dialect setup)")


def write_all(out: Path, seed: int, engine_check: bool = True) -> dict:
    splits = build_splits(seed, engine_check)
    return write_dataset(out, splits, test_cases(splits["test"]))


def main() -> None:
    args = parse_args(__doc__, HERE, ("--skip-engine-check", "do not run the test references in ladybug"))
    report(write_all(args.out, args.seed, engine_check=not args.skip_engine_check), args.out)


if __name__ == "__main__":
    main()
