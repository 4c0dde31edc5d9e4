"""Plain-Python core: paths, errors, manifests, registry, packaging, signing, installing.

Nothing here prints, exits or imports torch at import time.
"""
