"""Manifests: the model (v1 and v2), lenient rules and the strict schema, validation checks, routing exemplars."""
