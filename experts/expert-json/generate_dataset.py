#!/usr/bin/env python3
# ruff: noqa: SIM905  (word lists read best as split strings)
"""Generate the expert-json dataset: a short English description + a field list -> one JSON object.

`python experts/expert-json/generate_dataset.py` rewrites `data/{train,valid,test}.jsonl` and
`tests/test_cases.json` byte for byte (everything derives from `--seed`). Rows use the chat format
`{"messages": [system "Dialect: json\\nFields: name (string), age (integer), ...", user <text>,
               assistant <JSON>]}`.
The answer has exactly the listed keys, in the listed order; a listed field the text does not mention is `null`.
Test rows also carry `metric` ("json_equal": parsed objects must be equal, booleans never equal numbers) and
`json_schema`, the field list as a JSON Schema (each listed key required, in order, of its type or null), which
the evaluation passes on as structured output (`chat --json-schema`), as a user of the expert would.

Held out for the test split: every record of HELD_OUT_DOMAINS, the sentence style and the clause phrasings
marked with a leading `*`. The generator asserts that no test text appears in train or valid.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # experts/: the generators' shared code is experts/_common/

from _common.generator import (
    WORDS,
    Example,
    assert_no_overlap,
    draw_splits,
    parse_args,
    report,
    test_suite,
    unique_examples,
    usable,
    write_dataset,
)

FIRST = ("Maria Omar Lena Kenji Sofia Pedro Ines Victor Nadia Hugo Priya Tomas Julia Amir Zoe Felix Hana "
         "Ivan").split()
LAST = ("Lopez Haddad Berg Tanaka Rossi Silva Costa Novak Karimi Dubois Shah Weber Moreau Park Kowalski "
        "Reyes").split()
PEOPLE = [f"{f} {s}" for f in FIRST for s in LAST]
CITIES = ("Paris Lisbon Oslo Tokyo Lima Cairo Berlin Madrid Rome Dublin Austin Denver Boston Seoul Delhi "
          "Nairobi Quito Porto Vienna Prague Zurich Milan Osaka Perth Toronto Chicago Munich Warsaw").split()
ADJECTIVES = "Silent Golden Hidden Broken Distant Crimson Frozen Gentle Lonely Secret Wild Lucky".split()
NOUNS = "River Road Garden Mirror Storm Forest Letter Island Shadow Bridge Ocean Crown".split()
TITLES = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]
COLORS = "red blue green black white silver orange purple".split()
FLIGHT_NUMBERS = [f"{a}{k}" for a in ("AB", "KL", "QF", "LH") for k in range(100, 140)]
COURSE_TITLES = [f"{a} {t}" for a in ("Intro to", "Advanced")
                 for t in "Algebra Chemistry Poetry Economics Robotics Drawing".split()]


@dataclass(frozen=True)
class Field:
    key: str
    type: str  # "string" | "integer" | "number" | "boolean"
    values: tuple  # string pool, or (low, high) for integers, or (low, high, decimals) for numbers
    clauses: tuple  # "{v}" phrasings; for booleans the phrasings of true
    negatives: tuple = ()  # boolean phrasings of false


def s(key, pool, *clauses):
    return Field(key, "string", tuple(pool), clauses)


def i(key, low, high, *clauses):
    return Field(key, "integer", (low, high), clauses)


def n(key, low, high, decimals, *clauses):
    return Field(key, "number", (low, high, decimals), clauses)


def b(key, yes, no):
    return Field(key, "boolean", (), tuple(yes), tuple(no))


@dataclass(frozen=True)
class Domain:
    name: str
    subject: Field  # a string field that opens the sentence
    intros: tuple  # how the subject is introduced, "{v}" is its value
    fields: tuple


# A leading "*" marks a phrasing held out for the test split.
DOMAINS = [
    Domain("person", s("name", PEOPLE), ("{v}",), (
        i("age", 18, 90, "is {v} years old", "*is aged {v}", "has just turned {v}"),
        s("city", CITIES, "lives in {v}", "is based in {v}"),
        s("job", "nurse teacher pilot chef lawyer plumber".split(), "works as a {v}",
          "is employed as a {v}"),
        b("married", ["is married"], ["is single", "is not married"]))),
    Domain("product", s("name", [f"{w} {t}" for w in WORDS for t in ("Lamp", "Kettle", "Chair")]),
           ("The {v}", "{v}"), (
        n("price", 1, 999, 2, "costs {v} dollars", "is priced at {v} dollars", "*sells for {v} dollars"),
        s("color", COLORS, "comes in {v}", "is available in {v}"),
        b("in_stock", ["is in stock", "is available"], ["is out of stock", "is sold out"]),
        n("weight_kg", 0, 50, 1, "weighs {v} kg"))),
    Domain("book", s("title", TITLES), ("The book {v}", "{v}"), (
        s("author", PEOPLE, "was written by {v}", "is by {v}"),
        i("year", 1850, 2024, "was published in {v}", "came out in {v}"),
        i("pages", 60, 1400, "has {v} pages", "*runs to {v} pages"),
        b("bestseller", ["is a bestseller"], ["is not a bestseller"]))),
    Domain("movie", s("title", TITLES), ("The movie {v}", "The film {v}"), (
        s("director", PEOPLE, "was directed by {v}"),
        i("year", 1930, 2024, "was released in {v}", "premiered in {v}"),
        n("rating", 1, 10, 1, "is rated {v}", "has a rating of {v}"),
        i("duration_min", 60, 220, "runs {v} minutes", "lasts {v} minutes"))),
    Domain("flight", s("flight_number", FLIGHT_NUMBERS), ("Flight {v}",), (
        s("origin", CITIES, "departs from {v}", "leaves from {v}"),
        s("destination", CITIES, "flies to {v}", "arrives in {v}"),
        s("gate", [f"{g}{k}" for g in "ABCD" for k in range(1, 30)], "boards at gate {v}"),
        b("delayed", ["is delayed"], ["is on time"]),
        i("passengers", 20, 450, "carries {v} passengers"))),
    Domain("event", s("name", [f"{w} {k} Festival" for w in WORDS for k in ("Jazz", "Film", "Food")]),
           ("The {v}",), (
        s("city", CITIES, "takes place in {v}", "is held in {v}"),
        s("date", [f"2025-{m:02d}-{d:02d}" for m in range(1, 13) for d in (3, 11, 19, 27)], "happens on {v}",
          "is scheduled for {v}"),
        i("attendees", 50, 90000, "expects {v} attendees"),
        b("free", ["is free to attend"], ["requires a paid ticket"]))),
    Domain("car", s("model", [f"{w} {m}" for w in WORDS for m in ("GT", "LX", "Sport")]), ("The {v}",), (
        i("year", 1990, 2025, "was built in {v}"),
        i("mileage_km", 0, 400000, "has {v} km on the clock", "has been driven {v} km"),
        s("color", COLORS, "is painted {v}"),
        b("electric", ["is electric"], ["runs on petrol", "is not electric"]),
        n("price", 1000, 90000, 2, "costs {v} dollars"))),
    Domain("restaurant", s("name", [f"{w} Kitchen" for w in WORDS]), ("{v}",), (
        s("cuisine", "thai italian mexican indian greek".split(), "serves {v} food",
          "specializes in {v} cuisine"),
        s("city", CITIES, "is located in {v}"),
        n("rating", 1, 5, 1, "is rated {v}", "*holds a rating of {v}"),
        b("open_late", ["stays open late"], ["closes early"]),
        i("seats", 10, 400, "has {v} seats"))),
    Domain("hotel", s("name", [f"Hotel {w}" for w in WORDS]), ("{v}",), (
        s("city", CITIES, "is in {v}"),
        i("stars", 1, 5, "has {v} stars", "is rated {v} stars"),
        n("price_per_night", 30, 900, 2, "charges {v} dollars per night"),
        b("pool", ["has a pool"], ["has no pool"]))),
    Domain("order", s("order_id", [f"A{k}" for k in range(1000, 1400)]), ("Order {v}",), (
        s("customer", PEOPLE, "was placed by {v}"),
        n("total", 1, 5000, 2, "totals {v} dollars", "comes to {v} dollars"),
        i("items", 1, 40, "contains {v} items"),
        b("shipped", ["has shipped", "has been shipped"], ["has not shipped yet"]))),
    Domain("employee", s("name", PEOPLE), ("{v}",), (
        s("department", "Sales Finance Legal Research Support Design".split(), "works in {v}",
          "belongs to the {v} department"),
        i("salary", 20000, 250000, "earns {v} per year", "has a salary of {v}"),
        b("remote", ["works remotely"], ["works on site"]),
        i("start_year", 1990, 2025, "joined in {v}", "*started in {v}"))),
    Domain("song", s("title", TITLES), ("The song {v}",), (
        s("artist", PEOPLE, "is performed by {v}", "is sung by {v}"),
        i("year", 1950, 2025, "was recorded in {v}"),
        i("length_sec", 90, 600, "lasts {v} seconds"),
        b("explicit", ["has explicit lyrics"], ["is family friendly"]))),
    Domain("apartment", s("address", [f"{k} {w} Street" for k in (4, 18, 52) for w in WORDS]),
           ("The apartment at {v}",), (
        s("city", CITIES, "is in {v}"),
        i("rooms", 1, 9, "has {v} rooms"),
        i("rent", 300, 6000, "rents for {v} dollars a month"),
        b("furnished", ["is furnished"], ["is unfurnished"]))),
    Domain("course", s("title", COURSE_TITLES), ("The course {v}",), (
        s("teacher", PEOPLE, "is taught by {v}"),
        i("credits", 1, 12, "is worth {v} credits"),
        b("online", ["is online"], ["is held in person"]),
        i("students", 5, 500, "has {v} enrolled students"))),
    Domain("team", s("name", [f"{c} {a}" for c in CITIES for a in ("Lions", "Comets")]), ("The team {v}",), (
        s("coach", PEOPLE, "is coached by {v}"),
        i("founded", 1880, 2020, "was founded in {v}"),
        i("titles", 0, 40, "has won {v} titles"),
        b("professional", ["is professional"], ["is an amateur team"]))),
    Domain("weather", s("city", CITIES), ("The forecast for {v}",), (
        i("temperature_c", -20, 45, "shows {v} degrees"),
        s("condition", "rain sunshine snow fog".split(), "predicts {v}"),
        i("wind_kmh", 0, 120, "has winds of {v} km/h"),
        b("warning", ["includes a storm warning"], ["has no warnings"]))),
    Domain("pet", s("name", "Bella Max Luna Rocky Milo Coco Daisy Oscar Ruby Toby".split()), ("{v}",), (
        s("species", "dog cat rabbit parrot".split(), "is a {v}"),
        i("age", 1, 20, "is {v} years old"),
        s("owner", PEOPLE, "belongs to {v}"),
        b("vaccinated", ["is vaccinated"], ["is not vaccinated"]))),
    Domain("ship", s("name", WORDS), ("The ship {v}",), (
        s("port", CITIES, "is docked in {v}"),
        i("crew", 3, 3000, "has a crew of {v}"),
        n("length_m", 10, 400, 1, "is {v} meters long"),
        b("cargo", ["carries cargo"], ["carries no cargo"]))),
    Domain("laptop", s("model", [f"{w} {k}" for w in WORDS for k in ("Pro", "Air", "X")]),
           ("The {v} laptop",), (
        i("ram_gb", 4, 128, "has {v} GB of RAM"),
        n("price", 200, 5000, 2, "costs {v} dollars"),
        n("weight_kg", 0, 4, 2, "weighs {v} kg"),
        b("touchscreen", ["has a touchscreen"], ["has no touchscreen"]))),
]
HELD_OUT_DOMAINS = {"pet", "ship", "laptop"}
# {S} is the subject opening a sentence, {s} the same subject inside one ("The book X" -> "the book X").
STYLES = ("{S} {all}.", "Note that {s} {all}.", "{S} {first}. Also, {s} {rest}.",
          "Here is what we know: {s} {all}.", "*As reported, {s} {first}; moreover, {s} {rest}.")
INSTRUCTIONS = ("", "", "", "Extract the fields as JSON: ", "Convert this text to JSON: ",
                "Return a JSON object for: ", "Parse into JSON: ")


def allowed(options, mode: str) -> list:
    """Phrasings usable in ``mode``: "train" drops the `*` ones, "heldout" keeps only them, "any" keeps all."""
    return [o for o in options if usable(o, mode)]


def draw(rng: random.Random, field: Field):
    if field.type == "string":
        return rng.choice(field.values)
    if field.type == "integer":
        return rng.randint(*field.values)
    if field.type == "boolean":
        return rng.random() < 0.5
    low, high, decimals = field.values
    while True:
        value = round(rng.uniform(low, high), decimals)
        if value != int(value):
            return value


def clause(rng: random.Random, field: Field, value, mode: str) -> str:
    if field.type == "boolean":
        return rng.choice(field.clauses if value else field.negatives)
    options = allowed(field.clauses, "train" if mode == "train" else "any")
    return rng.choice(options).lstrip("*").format(v=value)


def join_and(parts: list) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def make_example(rng: random.Random, domain: Domain, mode: str) -> Example | None:
    """``mode``: "train" avoids every `*` phrasing, "heldout" uses the `*` sentence style, "any" uses all."""
    others = rng.sample(domain.fields, rng.randint(2, len(domain.fields)))
    missing = rng.choice(others) if rng.random() < 0.15 else None
    values = {f.key: draw(rng, f) for f in (domain.subject, *others)}
    listed = [domain.subject, *others]
    rng.shuffle(listed)
    clauses = [clause(rng, f, values[f.key], mode) for f in others if f is not missing]
    rng.shuffle(clauses)
    styles = [st for st in allowed(STYLES, mode) if len(clauses) > 1 or "{rest}" not in st]
    if not styles:
        return None
    style = rng.choice(styles)
    subject = rng.choice(domain.intros).format(v=values[domain.subject.key])
    inner = "t" + subject[1:] if subject.startswith("The ") else subject
    sentence = style.lstrip("*").format(S=subject, s=inner, all=join_and(clauses), first=clauses[0],
                                        rest=join_and(clauses[1:]) if len(clauses) > 1 else "")
    system = "Dialect: json\nFields: " + ", ".join(f"{f.key} ({f.type})" for f in listed)
    answer = {f.key: None if f is missing else values[f.key] for f in listed}
    return Example(domain.name, STYLES.index(style), system, rng.choice(INSTRUCTIONS) + sentence,
                   json.dumps(answer, ensure_ascii=False), {"json_schema": fields_schema(listed)})


def fields_schema(listed: list) -> dict:
    """The JSON Schema of an answer: exactly the listed keys, in order, each of its type or null."""
    return {"type": "object", "properties": {f.key: {"type": [f.type, "null"]} for f in listed},
            "required": [f.key for f in listed], "additionalProperties": False}


def generate(rng: random.Random, count: int, held_out_domain: bool, mode: str, seen: set) -> list:
    """``count`` examples whose texts are not in ``seen`` (which grows)."""
    domains = [d for d in DOMAINS if (d.name in HELD_OUT_DOMAINS) == held_out_domain]
    return unique_examples(count, lambda: make_example(rng, rng.choice(domains), mode), seen)


def build_splits(seed: int) -> dict:
    rng = random.Random(seed)
    seen: set = set()
    splits = draw_splits(rng, lambda count, held_out, mode: generate(rng, count, held_out, mode, seen),
                         "json_equal")
    assert_no_overlap(splits["train"] + splits["valid"], splits["test"])
    return splits


def test_case(number: int, row: dict) -> dict:
    system, text, answer = (m["content"] for m in row["messages"])
    meta = row["meta"]
    return {
        "id": f"json_{number:03d}", "name": f"{meta['intent']} record",
        "prompt": text, "expected_keywords": list(json.loads(answer)), "expected_format": "json",
        "category": "hard" if meta["held_out"] == "template" or "null" in answer else "basic",
        "system": system, "reference": answer, "metric": "json_equal", "json_schema": row["json_schema"],
    }


def test_cases(test: list) -> dict:
    return test_suite("expert-json", "Held-out text-to-JSON extraction cases (new record kinds or new "
                      "phrasings), scored by parsed JSON equality", test, test_case)


def write_all(out: Path, seed: int) -> dict:
    splits = build_splits(seed)
    return write_dataset(out, splits, test_cases(splits["test"]))


def main() -> None:
    args = parse_args(__doc__, HERE)
    report(write_all(args.out, args.seed), args.out)


if __name__ == "__main__":
    main()
