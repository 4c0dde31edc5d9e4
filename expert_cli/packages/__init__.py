"""Distribution: `.expert` archives, signing and trust, verification, the registry, installing from files,
folders and Git. Pure Python: nothing here imports torch."""
