"""The lexicon's domains as one router sees them: who inherits which, and what of them a prompt holds.

Built once per router (:class:`DomainIndex`): each candidate inherits the domains its name (else its
capabilities, keywords or tags) names (:meth:`expert_cli.routing.lexicon.Lexicon.domains_of`) and gets their
vocabulary as features. Per prompt, :meth:`DomainIndex.structures` finds the patterns of inherited domains
(a schema, code) and :meth:`DomainIndex.foreign` the domains that no candidate inherits but the prompt
names, by a term or a pattern ("an Elasticsearch query" with only a SQL expert loaded).
"""

from __future__ import annotations

from collections.abc import Sequence

from expert_cli.routing.features import Vocabulary, name_terms
from expert_cli.routing.index import TermIndex
from expert_cli.routing.lexicon import Lexicon, Pattern, find_patterns
from expert_cli.routing.text import is_common, normalize


class DomainIndex:
    """Domain membership of a router's candidates, the patterns to look for, and the foreign terms."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.members: dict[str, list[int]] = {}  # domain -> the candidates (by index) that inherit it
        self.in_domain: frozenset[int] = frozenset()
        self._patterns: list[Pattern] = []
        self._foreign_patterns: list[Pattern] = []
        self._foreign_terms = TermIndex()
        self._foreign_names: list[str] = []

    def vocabulary(self, index: int, name: str, capabilities: Sequence[str], keywords: Sequence[str],
                   tags: Sequence[str], grammar: Sequence[str]) -> Vocabulary:
        """Register candidate ``index``'s domains; their lexicon, its grammar's keywords and its tags."""
        values = [capability.partition(":")[2] or capability for capability in capabilities]
        domains = self.lexicon.domains_of(name_terms(name), [*values, *keywords, *tags])
        for domain in domains:
            self.members.setdefault(domain.name, []).append(index)
        ignored = self.lexicon.ignored_tags
        return Vocabulary(terms=tuple(term for domain in domains for term in domain.terms),
                          task_phrases=tuple(phrase for domain in domains for phrase in domain.task_phrases),
                          support=tuple(word for domain in domains for word in domain.support),
                          grammar=tuple(grammar),
                          tags=tuple(tag for tag in tags if tag.lower() not in ignored and not tag[:1].isdigit()))

    def finish(self) -> None:
        """Once every candidate is registered: the patterns to run and the foreign domains' terms."""
        self.in_domain = frozenset(index for members in self.members.values() for index in members)
        for domain in self.lexicon.domains:
            if domain.name in self.members:
                self._patterns.extend(domain.patterns)
                continue
            self._foreign_patterns.extend(domain.patterns)
            self._foreign_names.append(domain.name)
            for term in domain.terms:
                key = normalize(term)
                if key and not is_common(key):
                    self._foreign_terms.add(key, len(self._foreign_names) - 1)

    def structures(self, prompt: str) -> dict[int, list[Pattern]]:
        """Candidate index -> the patterns of its domains found in the prompt (a schema, code)."""
        if not self._patterns:
            return {}
        found: dict[int, list[Pattern]] = {}
        for domain, patterns in find_patterns(prompt, self._patterns).items():
            for index in self.members.get(domain, ()):
                found.setdefault(index, []).extend(patterns)
        return found

    def foreign(self, prompt: str, stems: tuple[str, ...]) -> list[str]:
        """The domains no candidate inherits that the prompt names (a term or a pattern), sorted."""
        names = {self._foreign_names[hit[0]] for hit in self._foreign_terms.matches(stems)}
        if self._foreign_patterns:
            names.update(find_patterns(prompt, self._foreign_patterns))
        return sorted(names)
