"""Corpus generators and training loop for the built-in demo base model (`builtin:tiny-qwen3`).

Used only by ``scripts/build_demo_base.py``; nothing in ``expert_cli`` imports this package, and
``tests/scripts/conftest.py`` loads it by file path for its tests.
"""
