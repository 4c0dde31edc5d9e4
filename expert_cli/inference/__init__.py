"""Inference: router (pure Python), runtime (one base, many adapters), templates, output cleaning, grammar.

Heavy libraries (torch, transformers, peft, xgrammar) are imported inside the functions that need them.
"""
