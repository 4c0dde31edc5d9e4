# ruff: noqa: SIM905  (word lists read best as split strings)
"""What the reference experts' dataset generators share (`experts/<name>/generate_dataset.py`).

Each generator finds this folder from its own path (`experts/_common/`), so it runs as
`python experts/<name>/generate_dataset.py` from anywhere. Here: the split sizes, the word pools and value
helpers the SQL and Cypher schemas both draw from, the made-up names of renamed training rows, the `*` mark of
a held-out phrasing, the chat/test row shapes, the split layout (train and valid on training schemas, test on
held-out schemas plus held-out phrasings), the test-case file and the command line. Everything a generator
draws comes from the random streams it passes in, so the datasets stay byte for byte what they were.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SIZES = {"train": 3000, "valid": 200, "test": 160}
TEST_CASES = 16

PEOPLE = ("Alice Bruno Chen Dara Elena Farid Grace Hugo Ines Jonas Kara Liam Maya Nils Olga Pedro Quinn Rosa "
          "Sami Tara Uma Victor Wen Ximena Yusuf Zoe Amir Bianca Carlos Dmitri Eva Felix Gita Hana Ivan "
          "Julia Kenji Lena Marco Nadia Omar Priya Rafael Sofia Tomas Ulla Vera Wanda Yara Zane").split()
CITIES = ("Paris Lisbon Oslo Tokyo Lima Cairo Berlin Madrid Rome Dublin Austin Denver Boston Seoul Delhi "
          "Nairobi Quito Porto Vienna Prague Zurich Milan Osaka Perth Sydney Toronto Chicago Houston Munich "
          "Warsaw").split()
COUNTRIES = ("France Japan Peru Egypt Germany Spain Italy Ireland Canada Brazil India Kenya Chile Norway "
             "Poland Mexico Greece Sweden Austria Portugal").split()
WORDS = ("Nova Atlas Cedar Summit Harbor Maple Orion Falcon Willow Aurora Granite Silver Coral Meadow Beacon "
         "Pioneer Crescent Ember Lotus Raven Sterling Tundra Vista Zenith").split()
PRODUCT_NAMES = [f"{w} {item}" for w in WORDS[:12] for item in ("Lamp", "Chair", "Kettle")]
TEAM_NAMES = [f"{c} {a}" for c in CITIES[:12] for a in ("Lions", "Comets")]
COURSE_TITLES = [f"{a} {b}" for a in ("Intro to", "Advanced")
                 for b in "Algebra Chemistry Poetry Economics Robotics Drawing Statistics Geology".split()]

OPS = [(">", ("greater than", "more than", "above", "over")), ("<", ("less than", "below", "under")),
       (">=", ("at least", "no less than")), ("<=", ("at most", "no more than")),
       ("=", ("equal to", "exactly"))]
DIRECTIONS = [("DESC", ("highest", "largest", "greatest")), ("ASC", ("lowest", "smallest"))]


def named(pattern: str) -> list[str]:
    return [pattern.format(w) for w in WORDS]


@dataclass(frozen=True)
class Attribute:
    """A column of a table or a property of a node: its name, how a question says it, and its values."""

    name: str
    phrase: str
    kind: str  # "text" or "int"
    pool: tuple = ()
    low: int = 0
    high: int = 0
    step: int = 1


def text(name: str, pool, phrase: str | None = None) -> Attribute:
    return Attribute(name, phrase or name.replace("_", " "), "text", tuple(pool))


def num(name: str, low: int, high: int, step: int = 1, phrase: str | None = None) -> Attribute:
    return Attribute(name, phrase or name.replace("_", " "), "int", (), low, high, step)


def attribute_values(rng: random.Random, attribute: Attribute, n: int) -> list:
    if attribute.kind == "int":  # unique, so ORDER BY ... LIMIT never ties
        return rng.sample(range(attribute.low, attribute.high + 1, attribute.step), n)
    palette = rng.sample(attribute.pool, min(len(attribute.pool), rng.randint(2, 4)))
    return [rng.choice(palette) for _ in range(n)]


def literal(value) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


ONSETS = "b c d f g h j k l m n p r s t v w z br ch cl cr dr fl gr pl pr sh st str th tr".split()
VOWELS = "a e i o u a e i o u ai ea io ou".split()
CODAS = ["", "", "", "", "n", "r", "s", "l", "m", "t", "ck", "nd", "st"]
RENAMED_SHARE = 0.4  # share of training rows whose schema names are made up (see each generator's rename)


def made_up_word(rng: random.Random) -> str:
    """Two or three pronounceable syllables from a wide inventory: a tokenizer splits them into varied pieces,
    so the model practises copying arbitrary names, not a few syllables."""
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(2, 3)))


def fresh_word(rng: random.Random, taken: set, reserved: set | frozenset = frozenset()) -> str:
    """A made-up word in neither ``taken`` (which it joins) nor ``reserved`` (real names, keywords)."""
    while (word := made_up_word(rng)) in taken or word in reserved:
        pass
    taken.add(word)
    return word


def usable(phrasing: str, mode: str) -> bool:
    """Whether a phrasing serves ``mode``: "train" avoids the held-out ones (a leading `*`), "heldout" takes
    only those, "any" takes all."""
    if mode == "any":
        return True
    return phrasing.startswith("*") == (mode == "heldout")


def pick_question(rng: random.Random, templates: dict, weights: dict, intents: dict, schema,
                  mode: str) -> tuple[str, int, str, str] | None:
    """(intent, template index, question, query): an intent drawn by weight, its query and slots built on
    ``schema`` by ``intents[intent]``, and a template usable in ``mode``; None when the schema can't serve."""
    names = [i for i in templates if mode != "heldout" or any(usable(t, mode) for t in templates[i])]
    intent = rng.choices(names, weights=[weights[i] for i in names])[0]
    made = intents[intent](rng, schema)
    if made is None:
        return None
    slots, query = made
    index = rng.choice([i for i, t in enumerate(templates[intent]) if usable(t, mode)])
    return intent, index, templates[intent][index].lstrip("*").format(**slots), query


@dataclass(frozen=True)
class Example:
    intent: str  # the question kind, or the record kind
    template: int  # index of the phrasing it was written with
    system: str
    prompt: str
    answer: str
    test_fields: dict = field(default_factory=dict)  # what a test row needs to be scored: setup, json_schema


def chat_row(example: Example) -> dict:
    return {"messages": [{"role": "system", "content": example.system},
                         {"role": "user", "content": example.prompt},
                         {"role": "assistant", "content": example.answer}]}


def test_row(example: Example, metric: str, held_out: str) -> dict:
    return {**chat_row(example), "metric": metric, **example.test_fields,
            "meta": {"intent": example.intent, "template": example.template, "held_out": held_out}}


def unique_examples(count: int, make: Callable[[], Example | None], seen: set,
                    check: Callable[[Example], None] | None = None) -> list:
    """``count`` examples from ``make`` whose prompts are not in ``seen`` (which grows); ``check`` asserts
    what each kept example must satisfy."""
    examples = []
    while len(examples) < count:
        example = make()
        if example is None or example.prompt in seen:
            continue
        if check is not None:
            check(example)
        seen.add(example.prompt)
        examples.append(example)
    return examples


def draw_splits(rng: random.Random, generate: Callable[[int, bool, str], list], metric: str) -> dict:
    """Train and valid from training schemas without held-out phrasings; test from held-out schemas (any
    phrasing) and from training schemas with held-out phrasings, shuffled. ``generate(count, held_out_schema,
    mode)`` draws the examples."""
    train = [chat_row(e) for e in generate(SIZES["train"], False, "train")]
    valid = [chat_row(e) for e in generate(SIZES["valid"], False, "train")]
    n_template = SIZES["test"] * 3 // 10
    test = [test_row(e, metric, "schema") for e in generate(SIZES["test"] - n_template, True, "any")]
    test += [test_row(e, metric, "template") for e in generate(n_template, False, "heldout")]
    rng.shuffle(test)
    return {"train": train, "valid": valid, "test": test}


def mix_in_renamed(train: list, seed: int, generate_renamed: Callable[[random.Random, int], list]) -> None:
    """Replace RENAMED_SHARE of ``train`` with renamed examples, drawn with their own random stream so that
    valid and test stay as they were."""
    renamed_rng = random.Random(f"{seed}-renamed")
    renamed = generate_renamed(renamed_rng, int(len(train) * RENAMED_SHARE))
    for index, example in zip(sorted(renamed_rng.sample(range(len(train)), len(renamed))), renamed):
        train[index] = chat_row(example)


def assert_no_overlap(training: list, test: list) -> None:
    def prompt(row: dict) -> str:
        return row["messages"][1]["content"]

    seen = {prompt(r) for r in training}
    leaked = [prompt(r) for r in test if prompt(r) in seen]
    assert not leaked, f"test prompts found in training: {leaked[:3]}"
    assert len({prompt(r) for r in test}) == len(test), "duplicate test prompts"


def test_suite(expert: str, description: str, test: list, make_case: Callable[[int, dict], dict],
               **metadata) -> dict:
    """The `tests/test_cases.json` document: TEST_CASES rows spread over the test split, each made a case by
    ``make_case(number, row)``."""
    step = len(test) // TEST_CASES
    cases = [make_case(number, row) for number, row in enumerate(test[::step][:TEST_CASES], start=1)]
    return {
        "test_suite": f"{expert}-heldout", "version": "1.0.0", "description": description,
        "test_cases": cases,
        "metadata": {"base_model": "builtin:tiny-qwen3", "expert_version": "0.1.0",
                     "source": "data/test.jsonl (generate_dataset.py)", **metadata},
    }


def write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_dataset(out: Path, splits: dict, suite: dict) -> dict:
    """Write `data/<split>.jsonl` and `tests/test_cases.json` under ``out``; returns the rows per split."""
    for name, rows in splits.items():
        write_jsonl(out / "data" / f"{name}.jsonl", rows)
    cases = out / "tests" / "test_cases.json"
    cases.parent.mkdir(parents=True, exist_ok=True)
    cases.write_text(json.dumps(suite, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {name: len(rows) for name, rows in splits.items()}


def parse_args(doc: str, default_out: Path, *flags: tuple[str, str]) -> argparse.Namespace:
    """`--seed` and `--out` (default: the expert's folder), plus each (flag, help) as a switch."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=default_out, help="folder that receives data/ and tests/")
    for flag, help_text in flags:
        parser.add_argument(flag, action="store_true", help=help_text)
    return parser.parse_args()


def report(counts: dict, out: Path) -> None:
    print(f"wrote {counts} to {out}")
