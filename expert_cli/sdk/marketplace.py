"""Sharing experts through Git indexes: add and update indexes, search, info, install by name, outdated,
publish and yank. The SDK face of :mod:`expert_cli.packages.index` and its neighbours.

    from expert_cli.sdk.marketplace import add_index, install_by_name, search
    add_index("team", "https://git.example.com/team/expert-index.git")
    search("sql")[0].name                # 'expert-sql'
    install_by_name("sql@^0.2")          # resolved, checksum-checked, verified, installed
"""

from __future__ import annotations

from pathlib import Path

from expert_cli.core.progress import ProgressCallback
from expert_cli.packages.index import IndexContentError, IndexEntry, entry_path
from expert_cli.packages.index_install import (
    IndexInstallResult,
    OutdatedRow,
    install_from_index,
    outdated_experts,
)
from expert_cli.packages.index_search import ExpertInfo, SearchHit, expert_info, search_indexes
from expert_cli.packages.index_sources import (
    IndexSource,
    IndexUpdate,
    add_index,
    get_source,
    read_sources,
    remove_index,
    set_default,
    update_index,
)
from expert_cli.packages.publish import PublishResult, publish_package, yank_version
from expert_cli.packages.resolve import looks_like_index_spec
from expert_cli.packages.staging import InstallOptions

__all__ = [
    "ExpertInfo", "IndexContentError", "IndexEntry", "IndexInstallResult", "IndexSource", "IndexUpdate",
    "OutdatedRow", "PublishResult", "SearchHit", "add_index", "entry_path", "expert_info", "install_by_name",
    "is_index_spec", "list_indexes", "outdated", "publish", "remove_index", "search", "set_default",
    "update_indexes", "yank",
]


def list_indexes() -> list[IndexSource]:
    return read_sources()


def update_indexes(name: str | None = None) -> list[IndexUpdate]:
    """Fetch one index (or every added one) and report what changed in each."""
    sources = [get_source(name)] if name else read_sources()
    return [update_index(source) for source in sources]


def search(query: str, base_model: str | None = None, capability: str | None = None,
           index: str | None = None, limit: int | None = None) -> list[SearchHit]:
    return search_indexes(query, base_model, capability, index, limit)


def is_index_spec(source: str) -> bool:
    """True when ``install SOURCE`` names an expert to find in the indexes (not a file, folder or URL)."""
    return looks_like_index_spec(source) and not Path(source).expanduser().exists()


def install_by_name(spec: str, options: InstallOptions | None = None, progress: ProgressCallback | None = None,
                    index: str | None = None) -> IndexInstallResult:
    return install_from_index(spec, options or InstallOptions(), progress, index)


def outdated() -> list[OutdatedRow]:
    return outdated_experts()


def publish(package: Path, index_root: Path, url: str | None = None, path_in_repo: str | None = None,
            allow_new_publisher: bool = False, progress: ProgressCallback | None = None) -> PublishResult:
    return publish_package(package, index_root, url, path_in_repo, allow_new_publisher, progress)


def yank(spec: str, index_root: Path, undo: bool = False, model: str | None = None) -> PublishResult:
    return yank_version(spec, index_root, undo, model)


def info(spec: str, index: str | None = None) -> ExpertInfo:
    return expert_info(spec, index)
