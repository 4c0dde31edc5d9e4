"""Derive expert-cli's manifest schema from the original HiveLLM Draft-07 schema (MIT).

Run once, by hand: ``python scripts/make_schema.py /path/to/original/expert-manifest.schema.json``.
It writes ``schemas/expert-manifest.schema.json`` with these corrections and additions:
- ``prompt_template`` also accepts ``qwen3``, ``qwen`` and ``llama`` (what real manifests and the runtime use);
- ``training.decoding`` also knows ``min_p``, ``repetition_penalty``, ``max_new_tokens``, ``max_tokens`` and
  ``names_from_prompt`` (the grammar rule bound to the prompt's identifiers, see prompts/grammar_binding.py);
- ``integrity`` accepts both the original schema's shape and the signing shape expert-cli writes;
- ``evaluation`` accepts the union of the schema's and the original loader's shapes;
- a top-level ``files`` map (packaged file -> SHA-256 hex), written by ``expert-cli package``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEX64 = "^[a-f0-9]{64}$"


def correct(schema: dict) -> dict:
    defs = schema["definitions"]
    schema["$id"] = "https://github.com/expert-cli/expert-cli/schemas/expert-manifest.schema.json"
    schema["title"] = "expert-cli manifest (HiveLLM-compatible, v1.0 and v2.0)"
    enum = defs["BaseModelV2"]["properties"]["prompt_template"]["enum"]
    enum.extend(t for t in ("qwen3", "qwen", "llama") if t not in enum)
    decoding = defs["DecodingConfig"]["properties"]
    decoding["min_p"] = {"type": "number", "minimum": 0, "maximum": 1}
    decoding["repetition_penalty"] = {"type": "number", "exclusiveMinimum": 0}
    decoding["max_new_tokens"] = {"type": "integer", "minimum": 1}
    decoding["max_tokens"] = {"type": "integer", "minimum": 1}
    decoding["names_from_prompt"] = {
        "type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]*$",
        "description": "A grammar rule (e.g. schema-name) that may only produce identifiers found in the prompt"}
    defs["Integrity"] = {
        "type": "object",
        "description": "Package signature: the original schema's shape or the one expert-cli sign writes",
        "properties": {
            "timestamp": {"type": "string"},
            "created_at": {"type": "string"},
            "public_key": {"type": "string"},
            "pubkey": {"type": "string"},
            "publisher": {"type": "string"},
            "signature_algorithm": {"type": "string", "enum": ["ed25519"]},
            "signature": {"type": "string"},
            "files": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["signature"],
        "anyOf": [{"required": ["public_key"]}, {"required": ["pubkey"]}],
        "patternProperties": {"^_": {"type": "string"}},
    }
    defs["Evaluation"]["properties"]["test_set_size"] = {"type": "integer", "minimum": 0}
    schema["properties"]["files"] = {
        "type": "object",
        "description": "SHA-256 of every packaged file, written by `expert-cli package`",
        "additionalProperties": {"type": "string", "pattern": HEX64},
    }
    add_generation(defs)
    return schema


GENERATION = {
    "type": "object",
    "description": "How `expert-cli dataset generate` made (and can remake) this expert's synthetic rows",
    "properties": {
        "task": {"type": "string", "description": "What the rows teach, told to the generating model"},
        "seeds": {"type": "string", "description": "Seed rows shown to the model (default: training.dataset.path)"},
        "prompt_template": {"type": "string", "description": "User message with {task}, {examples} and {n}"},
        "model": {"type": "string"},
        "base_url": {"type": "string", "description": "OpenAI-compatible API root"},
        "out": {"type": "string", "description": "Output file, relative to the expert (data/generated.jsonl)"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "concurrency": {"type": "integer", "minimum": 1},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "max_retries": {"type": "integer", "minimum": 0},
        "examples_per_prompt": {"type": "integer", "minimum": 0},
        "rows_per_request": {"type": "integer", "minimum": 1},
        "validators": {"type": "array", "items": {"type": "string", "pattern": "^(sql|cypher|json|[\\w.]+:\\w+)$"},
                       "description": "sql, cypher, json, or a Python validator as module:function"},
        "sql_dialect": {"type": "string", "description": "sqlglot dialect the SQL is parsed in (sqlite)"},
        "near_duplicate_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
    "patternProperties": {"^_": {"type": "string"}},
}


def add_generation(defs: dict) -> None:
    """``training.generation``: the settings of ``expert-cli dataset generate``."""
    defs["Generation"] = GENERATION
    defs["Training"]["properties"]["generation"] = {"$ref": "#/definitions/Generation"}


def main() -> None:
    source = Path(sys.argv[1])
    target = Path(__file__).resolve().parent.parent / "schemas" / "expert-manifest.schema.json"
    schema = correct(json.loads(source.read_text(encoding="utf-8")))
    target.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
