#!/usr/bin/env python3
"""Router benchmark: accuracy on a labelled prompt set and latency with 10 and 1000 synthetic experts.

    .venv/bin/python scripts/bench_router.py [--prompts scripts/data/router_prompts.jsonl] [--out bench-results]

Accuracy is measured on expert sets built from what exists: the real fixture manifests
(``shared/fixtures/hivellm``: expert-sql, expert-neo4j) plus any reference expert in ``experts/`` not
named like them; and the reference experts alone, with routing exemplars sampled from their datasets as
``package`` does. A prompt's expected experts are filtered to the loaded ones (a JSON prompt expects the
base model when no JSON expert is loaded). A decision is right when its set of experts equals that set.
The original's two routers (reference section 5.1 and 5.2, ``scripts/original_router.py``) run on the same
sets; they can choose at most one expert. Latency is the wall time of one ``route`` call (p50/p99 over
every query and repetition), goals <= 50 us (10 experts) and <= 1 ms (1000 experts) at p50.

The labelled evaluation of issue 17 runs on the six published manifests of the original (expert-sql and
expert-neo4j from the fixtures, expert-json, expert-elastic, expert-typescript and expert-tools from
``tests/routing/data/published``), manifests only, as a user who installs them has them, and on the
reference experts. Its prompts come in two parts: a development part (``scripts/data/routing_dev.jsonl``
plus ``router_prompts.jsonl``), the only one whose misses may be looked at while tuning, and a held-out
part (``scripts/data/routing_heldout.jsonl``), written before any tuning and only ever scored: its misses
are never printed. Reported per part: exact-decision accuracy, and precision and recall per expert and for
the base model ("base": no expert chosen).
``--base-model FOLDER`` also scores with the base model's own hidden states (``routing/hidden.py``), as
``chat`` can with ``EXPERT_ROUTER_SEMANTIC=base``: accuracy on both parts and the time per routing decision
(one forward pass of the prompt). ``--base-model qwen3-0.6b-shape`` times a random-weight model of
Qwen3-0.6B's exact shape (latency only: its similarities mean nothing).
Writes ``router.json`` and ``router.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from original_router import OriginalChatRouter, OriginalKeywordRouter
from synthetic_experts import synthetic_candidates, synthetic_queries

from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.routing.router import Router, RouterCandidate

FIXTURES = ROOT.parent / "shared" / "fixtures" / "hivellm"
FIXTURE_FILES = ("expert-sql-manifest.json", "expert-neo4j-manifest.json")
PUBLISHED = ROOT / "tests" / "routing" / "data" / "published"
DATA = Path(__file__).resolve().parent / "data"
PARTS = {"dev": ("routing_dev.jsonl", "router_prompts.jsonl"), "held-out": ("routing_heldout.jsonl",)}
BASE = "base"
GOALS_US = {10: 50.0, 1000: 1000.0}


def load_prompts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def reference_experts() -> list[tuple[Manifest, list[str]]]:
    """Reference experts in ``experts/`` that have a valid manifest, with exemplars from their datasets."""
    from expert_cli.core.errors import ExpertError

    found = []
    for manifest_path in sorted(ROOT.glob("experts/*/manifest.json")):
        try:
            manifest = load_manifest(manifest_path)
        except ExpertError as exc:
            print(f"skipping {manifest_path}: {exc}", file=sys.stderr)
            continue
        found.append((manifest, sample_exemplars(manifest)))
    return found


def sample_exemplars(manifest: Manifest) -> list[str]:
    try:
        from expert_cli.manifest.exemplars import sample_routing_exemplars
    except ImportError:
        return []
    return sample_routing_exemplars(manifest)


def expert_sets() -> dict[str, list[tuple[Manifest, list[str]]]]:
    fixtures = [(load_manifest(FIXTURES / name), []) for name in FIXTURE_FILES if (FIXTURES / name).is_file()]
    references = reference_experts()
    fixture_names = {m.name for m, _ in fixtures}
    sets = {"fixtures": fixtures + [(m, []) for m, _ in references if m.name not in fixture_names]}
    if references:
        sets["reference (manifests only)"] = [(m, []) for m, _ in references]
        if any(exemplars for _, exemplars in references):
            sets["reference + exemplars"] = references
    return sets


def published_experts() -> list[tuple[Manifest, list[str]]]:
    """The six published manifests of the original, without exemplars."""
    fixtures = [load_manifest(FIXTURES / name) for name in FIXTURE_FILES if (FIXTURES / name).is_file()]
    published = [load_manifest(path) for path in sorted(PUBLISHED.glob("*/manifest.json"))]
    return [(manifest, []) for manifest in fixtures + published]


def class_metrics(pairs: list[tuple[list[str], list[str]]], classes: list[str]) -> dict[str, dict[str, Any]]:
    """Precision and recall per expert and for the base model (``base``: no expert), over (expected, got)."""
    out = {}
    for name in classes + [BASE]:
        has = (lambda chosen: not chosen) if name == BASE else (lambda chosen, n=name: n in chosen)
        tp = sum(1 for expected, got in pairs if has(expected) and has(got))
        fp = sum(1 for expected, got in pairs if not has(expected) and has(got))
        fn = sum(1 for expected, got in pairs if has(expected) and not has(got))
        out[name] = {"precision": round(tp / (tp + fp), 3) if tp + fp else None,
                     "recall": round(tp / (tp + fn), 3) if tp + fn else None, "support": tp + fn}
    return out


def labelled_report(make_routers: Callable[[list[tuple[Manifest, list[str]]]], dict[str, Callable]],
                    parts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each part of the labelled set on the published six and on the reference experts."""
    sets = {"published (manifests only)": published_experts()}
    for label, experts in expert_sets().items():
        if label.startswith("reference"):
            sets[label] = experts
    report: dict[str, Any] = {}
    for label, experts in sets.items():
        loaded = {m.name for m, _ in experts}
        routers = make_routers(experts)
        report[label] = {"experts": sorted(loaded)}
        for part, prompts in parts.items():
            report[label][part] = {}
            for name, route in routers.items():
                result = evaluate(route, prompts, loaded)
                pairs = [(sorted(n for n in row["expected"] if n in loaded), sorted(route(row["prompt"])))
                         for row in prompts]
                result["classes"] = class_metrics(pairs, sorted(loaded))
                if part != "dev":
                    result.pop("misses")  # the held-out part is only ever scored
                report[label][part][name] = result
    return report


def routers_for(experts: list[tuple[Manifest, list[str]]]) -> dict[str, Callable[[str], list[str]]]:
    router = Router([RouterCandidate.from_manifest(m, ex) for m, ex in experts])
    original = OriginalChatRouter([m.data for m, _ in experts])
    keyword = OriginalKeywordRouter([m.data for m, _ in experts])
    return {"router": lambda p: router.route(p).experts, "original_chat_5_1": lambda p: _one(original.route(p)),
            "original_route_5_2": lambda p: _one(keyword.route(p))}


def evaluate(route: Callable[[str], list[str]], prompts: list[dict[str, Any]], loaded: set[str]) -> dict[str, Any]:
    per_category: dict[str, list[int]] = {}
    misses = []
    for row in prompts:
        expected = sorted(name for name in row["expected"] if name in loaded)
        got = sorted(route(row["prompt"]))
        right = got == expected
        per_category.setdefault(row["category"], []).append(int(right))
        if not right:
            misses.append({"prompt": row["prompt"], "expected": expected, "got": got})
    total = sum(sum(v) for v in per_category.values())
    return {
        "accuracy": round(total / len(prompts), 4),
        "correct": total,
        "total": len(prompts),
        "by_category": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_category.items())},
        "misses": misses,
    }


def accuracy_report(prompts: list[dict[str, Any]], semantic_model: str | None = None) -> dict[str, Any]:
    report = {}
    for label, experts in expert_sets().items():
        loaded = {m.name for m, _ in experts}
        candidates = [RouterCandidate.from_manifest(m, ex) for m, ex in experts]
        router = Router(candidates)
        original = OriginalChatRouter([m.data for m, _ in experts])
        keyword = OriginalKeywordRouter([m.data for m, _ in experts])
        report[label] = {
            "experts": sorted(loaded),
            "exemplars": {m.name: len(ex) for m, ex in experts},
            "router": evaluate(lambda p, r=router: r.route(p).experts, prompts, loaded),
            "original_chat_5_1": evaluate(lambda p, r=original: _one(r.route(p)), prompts, loaded),
            "original_route_5_2": evaluate(lambda p, r=keyword: _one(r.route(p)), prompts, loaded),
        }
        if semantic_model:
            from expert_cli.routing.semantic import SemanticScorer

            semantic = Router(candidates, semantic=SemanticScorer(semantic_model))
            report[label]["router_semantic"] = evaluate(lambda p, r=semantic: r.route(p).experts, prompts, loaded)
    return report


def _one(name: str | None) -> list[str]:
    return [name] if name else []


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0
    return {"p50_us": round(pick(0.50), 2), "p99_us": round(pick(0.99), 2),
            "mean_us": round(statistics.fmean(ordered) / 1000.0, 2)}


def time_calls(route: Callable[[str], Any], queries: list[str], repeats: int) -> list[int]:
    """Nanoseconds per call; the garbage collector is paused while timing, as ``timeit`` does."""
    samples = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(repeats):
            for query in queries:
                start = clock()
                route(query)
                samples.append(clock() - start)
    finally:
        gc.enable()
    return samples


def latency_report(prompts: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    report = {}
    labelled = [row["prompt"] for row in prompts]
    for count in (10, 1000):
        candidates = synthetic_candidates(count, seed=count)
        queries = labelled + synthetic_queries(candidates, len(labelled), seed=count + 1)
        started = time.perf_counter()
        router = Router(candidates)
        build_ms = (time.perf_counter() - started) * 1000
        time_calls(router.route, queries[:50], 1)  # warm caches
        ours = percentiles(time_calls(router.route, queries, repeats))
        original = OriginalChatRouter([_as_manifest_dict(c) for c in candidates])
        theirs = percentiles(time_calls(original.route, queries, max(1, repeats // 5)))
        report[str(count)] = {"experts": count, "queries": len(queries), "build_ms": round(build_ms, 1),
                              "router": ours, "original_chat_5_1": theirs, "goal_p50_us": GOALS_US[count],
                              "meets_goal": ours["p50_us"] <= GOALS_US[count]}
    return report


def _as_manifest_dict(candidate: RouterCandidate) -> dict[str, Any]:
    return {"name": candidate.name, "capabilities": list(candidate.capabilities),
            "routing": {"keywords": list(candidate.keywords), "exclude_keywords": list(candidate.exclude_keywords),
                        "priority": candidate.priority}}


def markdown(results: dict[str, Any]) -> str:
    keys = ["router", "original_chat_5_1", "original_route_5_2"]
    titles = ["router", "original 5.1 (chat)", "original 5.2 (route)"]
    if any("router_semantic" in entry for entry in results["accuracy"].values()):
        keys.insert(1, "router_semantic")
        titles.insert(1, "router + semantic")
    lines = ["# Router benchmark", "", f"Prompts: {results['prompts']} labelled ({results['prompt_file']}).", "",
             "## Accuracy (exact set of chosen experts)", "",
             "| expert set | experts | " + " | ".join(titles) + " |", "|---|---|" + "---|" * len(keys)]
    for label, entry in results["accuracy"].items():
        cells = [f"{entry[k]['accuracy']:.1%} ({entry[k]['correct']}/{entry[k]['total']})" for k in keys]
        lines.append(f"| {label} | {', '.join(entry['experts'])} | " + " | ".join(cells) + " |")
    for label, entry in results["accuracy"].items():
        lines += ["", f"### By category: {label}", "", "| category | router | original 5.1 | original 5.2 |", "|---|---|---|---|"]
        for category in entry["router"]["by_category"]:
            cells = [f"{entry[k]['by_category'][category]:.0%}" for k in ("router", "original_chat_5_1", "original_route_5_2")]
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
    lines += labelled_markdown(results.get("labelled", {}))
    lines += ["", "## Latency per query (synthetic experts)", "",
              "| experts | build | router p50 | router p99 | goal p50 | original 5.1 p50 | original 5.1 p99 |",
              "|---|---|---|---|---|---|---|"]
    for entry in results["latency"].values():
        ours, theirs = entry["router"], entry["original_chat_5_1"]
        lines.append(f"| {entry['experts']} | {entry['build_ms']} ms | {ours['p50_us']} us | {ours['p99_us']} us | "
                     f"<= {entry['goal_p50_us']:g} us | {theirs['p50_us']} us | {theirs['p99_us']} us |")
    lines += ["", (f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {results['load']}; "
              f"{results['repeats']} repeats per query, garbage collector paused while timing."), ""]
    return "\n".join(lines)


def load_base(spec: str) -> tuple[Any, Any, str]:
    """A causal LM and its tokenizer: a local folder, or ``qwen3-0.6b-shape`` (random weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "qwen3-0.6b-shape":
        from bench_runtime import QWEN3_0_6B

        torch.manual_seed(0)
        model = Qwen3ForCausalLM(Qwen3Config(**QWEN3_0_6B)).to(torch.bfloat16 if device == "cuda" else torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(ROOT / "expert_cli" / "models" / "tiny-qwen3")  # ids fit the vocab
    else:
        model, tokenizer = AutoModelForCausalLM.from_pretrained(spec), AutoTokenizer.from_pretrained(spec)
    return model.to(device).eval(), tokenizer, device


def base_model_report(spec: str, parts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    from expert_cli.routing.hidden import HiddenStateScorer

    model, tokenizer, device = load_base(spec)
    report: dict[str, Any] = {"model": spec, "device": device, "sets": {}}
    scorer = HiddenStateScorer(model, tokenizer)
    experts = published_experts()
    candidates = [RouterCandidate.from_manifest(m, ex) for m, ex in experts]
    started = time.perf_counter()
    router = Router(candidates, semantic=scorer)
    report["fit_s"] = round(time.perf_counter() - started, 2)
    prompts = [row["prompt"] for rows in parts.values() for row in rows][:60 if spec != "qwen3-0.6b-shape" else 20]
    samples = time_calls(lambda p: router.route(p), prompts, 1)
    report["route"] = {key.replace("_us", "_ms"): round(value / 1000, 2) for key, value in percentiles(samples).items()}
    if spec != "qwen3-0.6b-shape":
        sets = {"published (manifests only)": experts}
        sets.update({label: rows for label, rows in expert_sets().items() if label.startswith("reference")})
        for label, chosen in sets.items():
            loaded = {m.name for m, _ in chosen}
            plain = Router([RouterCandidate.from_manifest(m, ex) for m, ex in chosen])
            semantic = Router([RouterCandidate.from_manifest(m, ex) for m, ex in chosen], semantic=scorer)
            report["sets"][label] = {part: {
                "router": evaluate(lambda p, r=plain: r.route(p).experts, rows, loaded)["accuracy"],
                "router_base_semantic": evaluate(lambda p, r=semantic: r.route(p).experts, rows, loaded)["accuracy"]}
                for part, rows in parts.items()}
    return report


def base_model_markdown(report: dict[str, Any]) -> list[str]:
    route = report["route"]
    timing = (f"Fit (embed every expert's texts once): {report['fit_s']} s; a routing decision with it: "
              f"p50 {route['p50_ms']} ms, p99 {route['p99_ms']} ms (published six).")
    lines = ["", f"## Base-model semantic score ({report['model']}, {report['device']})", "", timing, ""]
    if report["sets"]:
        lines += ["| expert set | part | router | router + base semantic |", "|---|---|---|---|"]
        for label, parts in report["sets"].items():
            for part, row in parts.items():
                lines.append(f"| {label} | {part} | {row['router']:.1%} | {row['router_base_semantic']:.1%} |")
    return lines


def labelled_markdown(labelled: dict[str, Any]) -> list[str]:
    lines = ["", "## Labelled evaluation: development and held-out parts (issue 17)", "",
             "| expert set | part | prompts | router | original 5.1 | original 5.2 | base recall (router) |",
             "|---|---|---|---|---|---|---|"]
    for label, entry in labelled.items():
        for part in PARTS:
            row = entry[part]
            cells = [f"{row[k]['accuracy']:.1%}" for k in ("router", "original_chat_5_1", "original_route_5_2")]
            base = row["router"]["classes"][BASE]["recall"]
            lines.append(f"| {label} | {part} | {row['router']['total']} | " + " | ".join(cells) + f" | {base:.1%} |")
    for label, entry in labelled.items():
        lines += ["", f"### Precision / recall per class: {label} (router; original 5.1 in brackets)", "",
                  "| class | " + " | ".join(f"{part} P | {part} R" for part in PARTS) + " |",
                  "|---|" + "---|---|" * len(PARTS)]
        for name in entry["experts"] + [BASE]:
            cells = []
            for part in PARTS:
                ours, theirs = entry[part]["router"]["classes"][name], entry[part]["original_chat_5_1"]["classes"][name]
                for key in ("precision", "recall"):
                    cells.append(f"{_pct(ours[key])} ({_pct(theirs[key])})")
            lines.append(f"| {name} (n={entry['held-out']['router']['classes'][name]['support']}) | " + " | ".join(cells) + " |")
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def load_parts() -> dict[str, list[dict[str, Any]]]:
    """The labelled parts; a prompt of the held-out part is never in the development part (two everyday
    questions of ``router_prompts.jsonl`` were written again for the held-out part)."""
    parts = {part: [row for name in files if (DATA / name).is_file() for row in load_prompts(DATA / name)]
             for part, files in PARTS.items()}
    held_out = {row["prompt"] for row in parts["held-out"]}
    parts["dev"] = [row for row in parts["dev"] if row["prompt"] not in held_out]
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=Path, default=Path(__file__).resolve().parent / "data" / "router_prompts.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--show-misses", action="store_true", help="Print the router's wrong decisions.")
    parser.add_argument("--semantic", metavar="MODEL", help="Also score with the semantic scorer (a model id or folder).")
    parser.add_argument("--base-model", metavar="FOLDER", help="Also score with a base model's hidden states "
                        "(a local model folder, or qwen3-0.6b-shape for latency only).")
    args = parser.parse_args()
    prompts = load_prompts(args.prompts)
    results = {"prompt_file": str(args.prompts.relative_to(ROOT) if args.prompts.is_relative_to(ROOT) else args.prompts),
               "prompts": len(prompts), "repeats": args.repeats,
               "accuracy": accuracy_report(prompts, args.semantic),
               "labelled": labelled_report(routers_for, load_parts()),
               "latency": latency_report(prompts, args.repeats),
               "load": " ".join(f"{value:.1f}" for value in os.getloadavg())}
    if args.base_model:
        results["base_model"] = base_model_report(args.base_model, load_parts())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "router.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = markdown(results)
    if "base_model" in results:
        text += "\n".join(base_model_markdown(results["base_model"])) + "\n"
    (args.out / "router.md").write_text(text, encoding="utf-8")
    print(text)
    if args.show_misses:
        for label, entry in results["accuracy"].items():
            for miss in entry["router"]["misses"]:
                print(f"[{label}] {miss['prompt']!r}: expected {miss['expected']}, got {miss['got']}", file=sys.stderr)
        for label, entry in results["labelled"].items():  # the development part only, never the held-out one
            for miss in entry["dev"]["router"]["misses"]:
                print(f"[dev, {label}] {miss['prompt']!r}: expected {miss['expected']}, got {miss['got']}",
                      file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
