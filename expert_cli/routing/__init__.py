"""The CPU-side router: which experts (or the bare base) answer a prompt. Pure Python, no torch."""
