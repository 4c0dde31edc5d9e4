"""An optional semantic score from the base model itself: mean-pooled hidden states, no extra model.

When a base model is loaded anyway (``chat``, the SDK, the server), its own understanding can tell how
close a prompt is to each expert. Each expert is described by a few texts (:func:`expert_texts`: a summary
of its name, description, capabilities and keywords, plus up to ``MAX_TEXTS`` routing exemplars); every
text is embedded once, as the mean over its tokens of one layer's hidden states, and cached by text, so
a router rebuilt on the same model embeds only what is new. A query costs one forward pass of the prompt.

Mean-pooled states of a decoder are close for any two texts (anisotropy), so vectors are centred on the
mean of everything embedded at :meth:`fit` (the experts' texts and the lexicon's ``general_prompts``,
everyday requests that belong to no expert) before the cosine. An expert's score is its best centred
cosine minus the best centred cosine to the general prompts, floored at 0: how much more the prompt is
like that expert's prompts than like everyday ones.

The score is support, not a decision (``decisive = False``): it adds to candidates that the prompt's words
or notation already put in the running, and never makes one strong or a task on its own. Nothing here is
imported unless a caller builds a :class:`HiddenStateScorer`; ``route`` without a model never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from expert_cli.routing.lexicon import builtin_lexicon_data

if TYPE_CHECKING:
    from expert_cli.routing.router import RouterCandidate

MAX_TEXTS = 16
MAX_TOKENS = 128
BATCH = 16
DEFAULT_LAYER = -1


def expert_texts(candidate: RouterCandidate) -> list[str]:
    """What an expert is about, as texts to embed: a summary line, then its exemplar prompts."""
    topics = [capability.partition(":")[2] or capability for capability in candidate.capabilities]
    summary = ". ".join(part for part in (
        candidate.name.removeprefix("expert-"), candidate.description,
        ", ".join(topic.replace("_", " ") for topic in topics), ", ".join(candidate.keywords)) if part)
    return [summary, *candidate.exemplars[:MAX_TEXTS]]


def general_prompts() -> list[str]:
    return [str(text) for text in builtin_lexicon_data().get("general_prompts", [])]


class HiddenStateScorer:
    """Similarity of a prompt to each expert, from a loaded causal LM's own hidden states."""

    decisive = False  # support only: see the module docstring

    def __init__(self, model: Any, tokenizer: Any, *, layer: int = DEFAULT_LAYER) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.layer = layer
        self._cache: dict[str, Any] = {}  # text -> its mean-pooled vector (CPU, float32)
        self._experts: Any = None
        self._owners: list[int] = []
        self._general: Any = None
        self._centre: Any = None

    def fit(self, candidates: Sequence[RouterCandidate]) -> None:
        import torch

        texts, self._owners = [], []
        for index, candidate in enumerate(candidates):
            for text in expert_texts(candidate):
                texts.append(text)
                self._owners.append(index)
        general = general_prompts()
        vectors = self.embed(texts + general)
        self._centre = vectors.mean(dim=0, keepdim=True)
        centred = torch.nn.functional.normalize(vectors - self._centre, dim=-1)
        self._experts, self._general = centred[:len(texts)], centred[len(texts):]

    def embed(self, texts: Sequence[str]) -> Any:
        """Mean-pooled hidden states of ``texts`` (one row each), from the cache where present."""
        import torch

        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            for text, vector in zip(batch, self._forward(batch)):
                self._cache[text] = vector
        return torch.stack([self._cache[text] for text in texts]) if texts else torch.empty(0)

    def _forward(self, texts: list[str]) -> Any:
        import torch

        tokenizer = self.tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        encoded = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=MAX_TOKENS)
        device = next(self.model.parameters()).device
        encoded = {key: value.to(device) for key, value in encoded.items()}
        backbone = getattr(self.model, "base_model", self.model)  # skips the LM head: no logits needed
        with torch.inference_mode():
            output = backbone(**encoded, output_hidden_states=True)
        states = output.hidden_states[self.layer].float()
        mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return list(pooled.cpu())

    def similarities(self, prompt: str) -> dict[int, float]:
        """Candidate index -> how much closer ``prompt`` is to that expert's texts than to everyday ones."""
        if self._experts is None or not prompt.strip():
            return {}
        import torch

        known = prompt in self._cache
        query = torch.nn.functional.normalize(self.embed([prompt])[0] - self._centre[0], dim=-1)
        if not known:
            del self._cache[prompt]  # prompts are not worth keeping; experts' texts are
        baseline = float((self._general @ query).max()) if len(self._general) else 0.0
        best: dict[int, float] = {}
        for owner, score in zip(self._owners, (self._experts @ query).tolist()):
            best[owner] = max(best.get(owner, -2.0), score)
        return {owner: round(score - baseline, 4) for owner, score in best.items() if score > baseline}
