"""The runtime: one base model, many adapters attached unmerged, batched decoding, grammars.

Heavy libraries (torch, transformers, xgrammar) are imported inside the functions that need them.
"""
