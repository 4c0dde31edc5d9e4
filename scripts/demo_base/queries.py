"""Random relational and graph schemas, and SQL / Cypher statements over them (no natural language)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .vocab import FILLER_WORDS, NODE_LABELS, RELATIONSHIPS, TABLES, VALUES

if TYPE_CHECKING:
    from .names import NamePool

NUMERIC_KINDS = {"money", "age", "count", "year", "small", "big", "rating"}
OPERATORS = ["=", ">", "<", ">=", "<=", "!=", "<>"]
SQL_TYPES = {"money": "REAL", "rating": "REAL", "date": "DATE", "bool": "BOOLEAN", "age": "INTEGER",
             "count": "INTEGER", "year": "INTEGER", "small": "INTEGER", "big": "INTEGER"}
OPEN_SHARE = 0.6  # share of schemas whose names come from the open-vocabulary pool (see names.py)


@dataclass
class Table:
    name: str
    columns: list[tuple[str, str, str]]  # (name, sql type, value kind)
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # (column, referenced table)


@dataclass
class GraphSchema:
    labels: dict[str, list[tuple[str, str]]]
    relationships: list[tuple[str, str, str, list[tuple[str, str]]]]


def rename(rng: random.Random, name: str) -> str:
    """Vary an identifier so the model sees many spellings of the same idea."""
    roll = rng.random()
    if roll < 0.6:
        return name
    if roll < 0.72:
        return name.rstrip("s") if name.endswith("s") and len(name) > 4 else name + "s"
    if roll < 0.84:
        return f"{rng.choice(FILLER_WORDS)}_{name}"
    return f"{name}_{rng.choice(FILLER_WORDS)}"


def random_value(rng: random.Random, kind: str) -> str:
    """A literal for a value kind, already quoted for SQL/Cypher."""
    if kind == "money":
        return str(rng.choice([rng.randint(1, 500), rng.randint(100, 99999), round(rng.uniform(1, 999), 2)]))
    ranges = {"age": (18, 80), "count": (0, 500), "year": (1950, 2024), "small": (1, 10),
              "big": (1000, 9000000)}
    if kind in ranges:
        return str(rng.randint(*ranges[kind]))
    if kind == "rating":
        return str(round(rng.uniform(0, 10), 1))
    if kind == "bool":
        return rng.choice(["TRUE", "FALSE", "1", "0"])
    if kind == "date":
        return f"'{rng.randint(1995, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}'"
    if kind == "email":
        return f"'{rng.choice(VALUES['person']).lower()}@{rng.choice(VALUES['company']).lower()}.com'"
    return "'" + rng.choice(VALUES.get(kind, VALUES["person"])) + "'"


def random_schema(rng: random.Random, pool: NamePool | None = None) -> list[Table]:
    """One to four related tables, each with an `id` key and a sample of its domain's columns; with a
    ``pool``, half of the schemas use made-up tables and columns instead of the fixed domains."""
    if pool is not None and rng.random() < OPEN_SHARE:
        return _link([_open_table(rng, pool) for _ in range(rng.randint(1, 3))], rng)
    names = rng.sample(sorted(TABLES), rng.randint(1, 4))
    tables = []
    for name in names:
        columns = rng.sample(TABLES[name], rng.randint(2, len(TABLES[name])))
        tables.append(Table(rename(rng, name), [("id", "INTEGER", "count"), *columns]))
    return _link(tables, rng)


def _open_table(rng: random.Random, pool: NamePool) -> Table:
    columns: dict[str, tuple[str, str, str]] = {"id": ("id", "INTEGER", "count")}
    key = rng.choice(["name", "title", "label", "code", pool.identifier(rng, 2)])
    columns[key] = (key, "TEXT", rng.choice(["person", "title", "product", "project", "company"]))
    for _ in range(rng.randint(2, 6)):
        name, kind = pool.identifier(rng), pool.kind(rng)
        columns.setdefault(name, (name, SQL_TYPES.get(kind, "TEXT"), kind))
    return Table(pool.table(rng), list(columns.values()))


def _link(tables: list[Table], rng: random.Random) -> list[Table]:
    """Each table after the first gets a foreign key to the one before it."""
    for child, parent in zip(tables[1:], tables[:-1]):
        fk = f"{parent.name.rstrip('s')}_id"
        child.columns.insert(rng.randint(1, len(child.columns)), (fk, "INTEGER", "count"))
        child.foreign_keys.append((fk, parent.name))
    return tables


def create_table(table: Table, rng: random.Random, multiline: bool | None = None) -> str:
    multiline = rng.random() < 0.4 if multiline is None else multiline
    parts = [f"{name} {sql_type}" + (" PRIMARY KEY" if name == "id" else "") for name, sql_type, _ in table.columns]
    parts += [f"FOREIGN KEY ({col}) REFERENCES {ref}(id)" for col, ref in table.foreign_keys]
    if multiline:
        return f"CREATE TABLE {table.name} (\n  " + ",\n  ".join(parts) + "\n);"
    return f"CREATE TABLE {table.name} (" + ", ".join(parts) + ");"


def schema_ddl(tables: list[Table], rng: random.Random) -> str:
    multiline = rng.random() < 0.4
    return "\n".join(create_table(t, rng, multiline) for t in tables)


def _condition(rng: random.Random, table: Table, prefix: str = "") -> str:
    name, _, kind = rng.choice(table.columns[1:])
    col = prefix + name
    roll = rng.random()
    if kind in NUMERIC_KINDS:
        if roll < 0.15:
            low, high = sorted([random_value(rng, kind), random_value(rng, kind)], key=float)
            return f"{col} BETWEEN {low} AND {high}"
        return f"{col} {rng.choice(OPERATORS)} {random_value(rng, kind)}"
    if roll < 0.15 and kind not in ("bool", "date"):
        return f"{col} LIKE '%{random_value(rng, kind).strip(chr(39))[:3]}%'"
    if roll < 0.25:
        values = ", ".join(random_value(rng, kind) for _ in range(rng.randint(2, 3)))
        return f"{col} IN ({values})"
    if roll < 0.3:
        return f"{col} IS {rng.choice(['NULL', 'NOT NULL'])}"
    return f"{col} {rng.choice(['=', '!=', '>', '<'] if kind == 'date' else ['=', '!='])} {random_value(rng, kind)}"


def _where(rng: random.Random, table: Table, prefix: str = "") -> str:
    conditions = [_condition(rng, table, prefix) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
    return " WHERE " + f" {rng.choice(['AND', 'AND', 'OR'])} ".join(conditions)


def _select_simple(rng: random.Random, table: Table) -> str:
    cols = ["*"] if rng.random() < 0.25 else [c[0] for c in rng.sample(table.columns, rng.randint(1, 3))]
    sql = f"SELECT {'DISTINCT ' if rng.random() < 0.1 else ''}{', '.join(cols)} FROM {table.name}"
    if rng.random() < 0.7:
        sql += _where(rng, table)
    if rng.random() < 0.4:
        sql += f" ORDER BY {rng.choice(table.columns)[0]}{rng.choice(['', ' ASC', ' DESC'])}"
    if rng.random() < 0.3:
        sql += f" LIMIT {rng.randint(1, 20)}"
    return sql


def _select_aggregate(rng: random.Random, table: Table) -> str:
    numeric = [c[0] for c in table.columns[1:] if c[2] in NUMERIC_KINDS] or ["id"]
    func = rng.choice(["COUNT", "SUM", "AVG", "MIN", "MAX"])
    arg = "*" if func == "COUNT" and rng.random() < 0.6 else rng.choice(numeric)
    agg = f"{func}({arg})" + (f" AS {func.lower()}_{arg if arg != '*' else 'rows'}" if rng.random() < 0.4 else "")
    texts = [c[0] for c in table.columns[1:] if c[2] not in NUMERIC_KINDS]
    if texts and rng.random() < 0.5:
        group = rng.choice(texts)
        sql = f"SELECT {group}, {agg} FROM {table.name}"
        sql += _where(rng, table) if rng.random() < 0.3 else ""
        sql += f" GROUP BY {group}"
        if rng.random() < 0.3:
            sql += f" HAVING {func}({arg}) > {rng.randint(1, 100)}"
        if rng.random() < 0.4:
            sql += f" ORDER BY {func}({arg}) {rng.choice(['ASC', 'DESC'])}"
            sql += f" LIMIT {rng.randint(1, 10)}" if rng.random() < 0.5 else ""
        return sql
    return f"SELECT {agg} FROM {table.name}" + (_where(rng, table) if rng.random() < 0.6 else "")


def _select_join(rng: random.Random, tables: list[Table]) -> str:
    child = rng.choice([t for t in tables if t.foreign_keys])
    fk, parent_name = child.foreign_keys[0]
    parent = next(t for t in tables if t.name == parent_name)
    a, b = (child.name[0], parent.name[0]) if child.name[0] != parent.name[0] else ("t1", "t2")
    cols = [f"{a}.{rng.choice(child.columns)[0]}", f"{b}.{rng.choice(parent.columns[1:])[0]}"]
    join = rng.choice(["JOIN", "JOIN", "INNER JOIN", "LEFT JOIN"])
    sql = f"SELECT {', '.join(cols)} FROM {child.name} {a} {join} {parent.name} {b} ON {a}.{fk} = {b}.id"
    if rng.random() < 0.6:
        filtered, prefix = rng.choice([(child, f"{a}."), (parent, f"{b}.")])
        sql += _where(rng, filtered, prefix)
    if rng.random() < 0.3:
        sql += f" ORDER BY {cols[0]} {rng.choice(['ASC', 'DESC'])}"
    return sql


def _select_subquery(rng: random.Random, table: Table) -> str:
    numeric = [c[0] for c in table.columns[1:] if c[2] in NUMERIC_KINDS] or ["id"]
    col = rng.choice(numeric)
    shown = rng.choice(table.columns[1:])[0]
    op = rng.choice([">", "<", ">=", "="])
    func = rng.choice(["AVG", "MAX", "MIN"])
    return f"SELECT {shown} FROM {table.name} WHERE {col} {op} (SELECT {func}({col}) FROM {table.name})"


def _modify(rng: random.Random, table: Table) -> str:
    cols = table.columns[1:]
    roll = rng.random()
    if roll < 0.4:
        chosen = rng.sample(cols, rng.randint(1, len(cols)))
        values = ", ".join(random_value(rng, c[2]) for c in chosen)
        return f"INSERT INTO {table.name} ({', '.join(c[0] for c in chosen)}) VALUES ({values})"
    if roll < 0.75:
        name, _, kind = rng.choice(cols)
        return f"UPDATE {table.name} SET {name} = {random_value(rng, kind)}" + _where(rng, table)
    return f"DELETE FROM {table.name}" + _where(rng, table)


def random_sql(rng: random.Random, tables: list[Table]) -> str:
    """One SQL statement over ``tables`` (SELECT-heavy), ending with a semicolon."""
    table = rng.choice(tables)
    roll = rng.random()
    if roll < 0.3:
        sql = _select_simple(rng, table)
    elif roll < 0.55:
        sql = _select_aggregate(rng, table)
    elif roll < 0.75 and len(tables) > 1:
        sql = _select_join(rng, tables)
    elif roll < 0.82:
        sql = _select_subquery(rng, table)
    elif roll < 0.93:
        sql = _modify(rng, table)
    else:
        sql = _select_simple(rng, table)
    return sql + ";"


def random_graph_schema(rng: random.Random, pool: NamePool | None = None) -> GraphSchema:
    """A few relationship types and the labels they connect, with a sample of each label's properties; with a
    ``pool``, half of the schemas use made-up labels, relationship types and properties."""
    if pool is not None and rng.random() < OPEN_SHARE:
        return _open_graph_schema(rng, pool)
    rels = rng.sample(RELATIONSHIPS, rng.randint(1, 4))
    labels: dict[str, list[tuple[str, str]]] = {}
    for src, _, dst, _ in rels:
        for label in (src, dst):
            if label not in labels:
                props = NODE_LABELS[label]
                labels[label] = rng.sample(props, rng.randint(1, len(props)))
    return GraphSchema(labels, rels)


def _open_graph_schema(rng: random.Random, pool: NamePool) -> GraphSchema:
    labels: dict[str, list[tuple[str, str]]] = {}
    for _ in range(rng.randint(2, 4)):
        key = rng.choice(["name", "title", "code", pool.identifier(rng, 2)])
        props = {key: rng.choice(["person", "title", "product", "company", "city"])}
        for _ in range(rng.randint(0, 4)):
            props.setdefault(pool.identifier(rng, 2), pool.kind(rng))
        labels.setdefault(pool.label(rng), list(props.items()))
    names = sorted(labels)
    rels = []
    for _ in range(rng.randint(1, 4)):
        props = [(pool.identifier(rng, 2), pool.kind(rng))] if rng.random() < 0.3 else []
        rels.append((rng.choice(names), pool.relationship(rng), rng.choice(names), props))
    return GraphSchema(labels, rels)


CYPHER_TYPES = {"year": "INTEGER", "age": "INTEGER", "count": "INTEGER", "small": "INTEGER",
                "big": "INTEGER", "money": "FLOAT", "rating": "FLOAT", "bool": "BOOLEAN", "date": "DATE"}


def _typed(props: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name}: {CYPHER_TYPES.get(kind, 'STRING')}" for name, kind in props)


def graph_schema_text(schema: GraphSchema, rng: random.Random) -> str:
    """The graph schema in one of two common notations."""
    if rng.random() < 0.5:
        lines = ["Node properties:"]
        lines += [f"{label} {{{_typed(props)}}}" for label, props in schema.labels.items()]
        lines.append("Relationship properties:")
        lines += [f"{t} {{{_typed(props)}}}" for _, t, _, props in schema.relationships if props]
        lines.append("The relationships:")
        lines += [f"(:{s})-[:{t}]->(:{d})" for s, t, d, _ in schema.relationships]
        return "\n".join(lines)
    nodes = [f"(:{label} {{{', '.join(p for p, _ in props)}}})" for label, props in schema.labels.items()]
    rels = [f"(:{s})-[:{t}]->(:{d})" for s, t, d, _ in schema.relationships]
    return "Nodes: " + ", ".join(nodes) + "\nRelationships: " + ", ".join(rels)


def _cypher_value(rng: random.Random, kind: str) -> str:
    value = random_value(rng, kind)
    if kind == "bool":
        return rng.choice(["true", "false"])
    return value.replace("'", '"') if rng.random() < 0.3 else value


def _node_filter(rng: random.Random, var: str, props: list[tuple[str, str]]) -> str:
    prop, kind = rng.choice(props)
    roll = rng.random()
    if kind in NUMERIC_KINDS:
        return f"{var}.{prop} {rng.choice(['=', '>', '<', '>=', '<=', '<>'])} {_cypher_value(rng, kind)}"
    if roll < 0.2 and kind not in ("bool", "date"):
        op = rng.choice(["CONTAINS", "STARTS WITH", "ENDS WITH"])
        return f"{var}.{prop} {op} '{random_value(rng, kind).strip(chr(39))[:3]}'"
    if roll < 0.3:
        return f"{var}.{prop} IN [{', '.join(_cypher_value(rng, kind) for _ in range(2))}]"
    return f"{var}.{prop} = {_cypher_value(rng, kind)}"


def random_cypher(rng: random.Random, schema: GraphSchema) -> str:
    """One Cypher statement over ``schema``: MATCH/WHERE/RETURN-heavy, some CREATE/MERGE/SET/DELETE."""
    src, rel, dst, rel_props = rng.choice(schema.relationships)
    a, b = src[0].lower(), dst[0].lower() if dst[0] != src[0] else dst[0].lower() + "2"
    sp, dp = schema.labels[src], schema.labels[dst]
    roll = rng.random()
    if roll < 0.25:
        query = f"MATCH ({a}:{src})"
        if rng.random() < 0.25:
            prop, kind = rng.choice(sp)
            query = f"MATCH ({a}:{src} {{{prop}: {_cypher_value(rng, kind)}}})"
        elif rng.random() < 0.7:
            query += " WHERE " + _node_filter(rng, a, sp)
        query += " RETURN " + ", ".join(f"{a}.{p}" for p, _ in rng.sample(sp, rng.randint(1, len(sp))))
    elif roll < 0.55:
        rvar = "r" if rel_props and rng.random() < 0.4 else ""
        arrow = rng.choice([f"-[{rvar}:{rel}]->", f"-[{rvar}:{rel}]->", f"<-[{rvar}:{rel}]-"])
        left, right = (f"({a}:{src})", f"({b}:{dst})") if arrow.endswith(">") else (f"({b}:{dst})", f"({a}:{src})")
        query = f"MATCH {left}{arrow}{right}"
        if rng.random() < 0.7:
            query += " WHERE " + _node_filter(rng, *rng.choice([(a, sp), (b, dp)]))
        shown = [f"{b}.{rng.choice(dp)[0]}", f"{a}.{rng.choice(sp)[0]}"][: rng.randint(1, 2)]
        if rvar:
            shown.append(f"r.{rel_props[0][0]}")
        query += " RETURN " + ("DISTINCT " if rng.random() < 0.15 else "") + ", ".join(shown)
    elif roll < 0.75:
        func = rng.choice(["count", "count", "avg", "sum", "max", "min"])
        numeric = [p for p, k in dp if k in NUMERIC_KINDS]
        arg = f"{b}.{rng.choice(numeric)}" if func != "count" and numeric else b
        func = func if arg != b else "count"
        alias = rng.choice(["total", "n", "cnt", f"{func}_{dst.lower()}"])
        key = f"{a}.{rng.choice(sp)[0]}"
        query = f"MATCH ({a}:{src})-[:{rel}]->({b}:{dst})"
        if rng.random() < 0.3:
            query += f" WITH {key} AS key, {func}({arg}) AS {alias} RETURN key, {alias}"
        else:
            query += f" RETURN {key}, {func}({arg}) AS {alias}"
        if rng.random() < 0.6:
            query += f" ORDER BY {alias} {rng.choice(['DESC', 'ASC'])}"
    elif roll < 0.82:
        hops = rng.choice(["*1..2", "*1..3", "*2", "*"])
        query = f"MATCH p = ({a}:{src})-[:{rel}{hops}]->({b}:{dst}) RETURN {rng.choice(['p', 'length(p)', b])}"
    else:
        query = _cypher_write(rng, src, rel, dst, a, b, sp, dp)
    if query.startswith("MATCH") and " RETURN " in query and rng.random() < 0.3 and "ORDER BY" not in query:
        query += f" ORDER BY {query.split('RETURN ')[1].split(',')[0].replace('DISTINCT ', '').split(' AS ')[0]}"
        query += rng.choice(["", " DESC", " ASC"])
    if " RETURN " in query and rng.random() < 0.3:
        query += f" LIMIT {rng.randint(1, 25)}"
    return query


def _cypher_write(rng, src, rel, dst, a, b, sp, dp) -> str:
    roll = rng.random()
    props = ", ".join(f"{p}: {_cypher_value(rng, k)}" for p, k in rng.sample(sp, rng.randint(1, len(sp))))
    if roll < 0.35:
        return f"{rng.choice(['CREATE', 'MERGE'])} ({a}:{src} {{{props}}})"
    if roll < 0.6:
        (p1, k1), (p2, k2) = rng.choice(sp), rng.choice(dp)
        return (f"MATCH ({a}:{src} {{{p1}: {_cypher_value(rng, k1)}}}), ({b}:{dst} {{{p2}: {_cypher_value(rng, k2)}}}) "
                f"{rng.choice(['CREATE', 'MERGE'])} ({a})-[:{rel}]->({b})")
    if roll < 0.85:
        prop, kind = rng.choice(sp)
        return f"MATCH ({a}:{src}) WHERE {_node_filter(rng, a, sp)} SET {a}.{prop} = {_cypher_value(rng, kind)}"
    return f"MATCH ({a}:{src}) WHERE {_node_filter(rng, a, sp)} DETACH DELETE {a}"
