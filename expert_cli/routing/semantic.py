"""An optional semantic scorer for the router: sentence embeddings (sentence-transformers).

Off by default. It is used only when ``EXPERT_ROUTER_SEMANTIC=1`` and the ``[semantic]`` extra is
installed; enabling it without the extra is an error naming the extra. ``EXPERT_ROUTER_SEMANTIC=base``
instead scores with the base model that is already loaded (:mod:`expert_cli.routing.hidden`), where a
caller passes one (``chat``, the SDK, the server); where none is loaded (``route``) it is off. The model is
``EXPERT_ROUTER_MODEL`` (a Hugging Face id in the local cache, or a local folder), default
``sentence-transformers/all-MiniLM-L6-v2``. Each expert is described by a few texts (name, description and
keywords in one, plus up to ``MAX_TEXTS`` exemplar prompts); a prompt's similarity to an expert is its best
cosine similarity to those texts. Embedding an expert happens once, in :meth:`SemanticScorer.fit`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from expert_cli.core.errors import MissingDependencyError, ModelNotFoundError

if TYPE_CHECKING:
    from expert_cli.routing.router import RouterCandidate

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENABLE_ENV = "EXPERT_ROUTER_SEMANTIC"
MODEL_ENV = "EXPERT_ROUTER_MODEL"
MAX_TEXTS = 32


BASE_MODEL_VALUE = "base"


def semantic_enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def semantic_scorer_from_env(model: Any = None, tokenizer: Any = None) -> Any:
    """A scorer when enabled by ``EXPERT_ROUTER_SEMANTIC``; None otherwise (the default).

    ``base``: the loaded base model's own hidden states (:class:`~expert_cli.routing.hidden.HiddenStateScorer`)
    when ``model`` and ``tokenizer`` are given, else None. ``1``: a sentence-embedding model."""
    if os.environ.get(ENABLE_ENV, "").strip().lower() == BASE_MODEL_VALUE:
        if model is None or tokenizer is None:
            return None
        from expert_cli.routing.hidden import HiddenStateScorer

        return HiddenStateScorer(model, tokenizer)
    if not semantic_enabled():
        return None
    return SemanticScorer(os.environ.get(MODEL_ENV, "").strip() or DEFAULT_MODEL)


def candidate_texts(candidate: RouterCandidate) -> list[str]:
    """What an expert is about, as sentences to embed: a summary line, then exemplar prompts."""
    summary = " ".join(part for part in (
        candidate.name.removeprefix("expert-"), candidate.description, ", ".join(candidate.keywords)) if part)
    return [summary, *candidate.exemplars[:MAX_TEXTS]]


class SemanticScorer:
    """Cosine similarity between a prompt and each expert's texts, with a sentence-embedding model."""

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.model_id = model
        self._model: Any = None
        self._matrix: Any = None
        self._owners: list[int] = []

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError("sentence-transformers", "semantic") from exc
            try:
                self._model = SentenceTransformer(self.model_id, device="cpu")
            except (OSError, ValueError) as exc:
                raise ModelNotFoundError(
                    f"the router's embedding model `{self.model_id}` is not available offline ({exc})",
                    hint=f"run `hf download {self.model_id}`, or set {MODEL_ENV} to a local model folder",
                ) from exc
        return self._model

    def fit(self, candidates: Sequence[RouterCandidate]) -> None:
        texts: list[str] = []
        self._owners = []
        for index, candidate in enumerate(candidates):
            for text in candidate_texts(candidate):
                texts.append(text)
                self._owners.append(index)
        self._matrix = self._embed(texts) if texts else None

    def _embed(self, texts: list[str]) -> Any:
        return self._load().encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def similarities(self, prompt: str) -> dict[int, float]:
        """Candidate index -> best cosine similarity of ``prompt`` to that candidate's texts."""
        if self._matrix is None or not prompt.strip():
            return {}
        scores = self._matrix @ self._embed([prompt])[0]
        best: dict[int, float] = {}
        for owner, score in zip(self._owners, scores.tolist()):
            if score > best.get(owner, -1.0):
                best[owner] = float(score)
        return best
