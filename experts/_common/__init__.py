"""Code the reference experts' dataset generators share (see generator.py)."""
