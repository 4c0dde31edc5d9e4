"""What ``install SOURCE`` names: a ``.expert`` file, an expert folder, or a Git repository with a ref.

Git forms: ``git+https://host/org/expert-x.git@v0.2.0``, ``https://host/org/expert-x.git#v0.2.0``,
``git://host/expert-x.git``, ``ssh://git@host/expert-x.git``, ``git@host:org/expert-x.git``,
``file:///path/repo.git#main``, or a local path to a Git repository that has no ``manifest.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from expert_cli.core.errors import UsageError
from expert_cli.manifest.model import MANIFEST_FILE

FILE, FOLDER, GIT = "file", "folder", "git"
_REMOTE = re.compile(r"^(?:https?|ssh|git)://", re.IGNORECASE)
_SCP = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")
_SOURCE_HINT = "pass a `.expert` file, an expert folder, or a Git URL such as `git+https://host/expert-x.git@v0.2.0`"


_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")
_HTTP_USER = re.compile(r"(?i)\b(https?://)[^/\s@]+@")


def redact_credentials(text: str) -> str:
    """``https://user:S3CRET@host/x`` -> ``https://host/x``: passwords are removed from every URL in ``text``
    (and the user part of http(s) URLs, often a token); ``ssh://git@host`` keeps its user name."""
    return _HTTP_USER.sub(r"\1", _PASSWORD.sub(r"\1@", text))


@dataclass(frozen=True)
class Source:
    kind: str
    location: str
    ref: str | None = None
    original: str = ""

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "location": self.location, "ref": self.ref}


def split_ref(url: str) -> tuple[str, str | None]:
    """``url#ref`` or ``url@ref`` (an ``@`` in the last path part) -> (url, ref)."""
    if "#" in url:
        base, ref = url.rsplit("#", 1)
        return base, ref or None
    last_slash = max(url.rfind("/"), url.rfind(":"))
    at = url.rfind("@")
    if at > last_slash and at > 0:
        return url[:at], url[at + 1:] or None
    return url, None


def is_git_repo(folder: Path) -> bool:
    return (folder / ".git").exists() or ((folder / "HEAD").is_file() and (folder / "objects").is_dir())


def parse_source(text: str) -> Source:
    """Classify a source string; local paths must exist."""
    raw = text.strip()
    if not raw or raw.startswith("-"):
        raise UsageError(f"`{redact_credentials(text)}` is not an install source", hint=_SOURCE_HINT)
    if raw.startswith("git+"):
        url, ref = split_ref(raw[4:])
        return Source(GIT, url, ref, raw)
    if raw.lower().startswith("file://"):
        return _file_url(raw)
    if _REMOTE.match(raw) or _SCP.match(raw):
        url, ref = split_ref(raw)
        if url.lower().endswith(".expert") and url.lower().startswith("http"):
            raise UsageError(f"`{redact_credentials(raw)}` is a package URL; packages are installed from "
                             "local files",
                             hint="download it (and its `.sha256`) first, then `expert-cli install <file>`")
        return Source(GIT, url, ref, raw)
    return _local(Path(raw).expanduser(), raw)


def _file_url(raw: str) -> Source:
    url, ref = split_ref(raw) if "#" in raw else (raw, None)
    path = Path(unquote(url[len("file://"):]))
    if path.is_dir() and is_git_repo(path) and (ref or not (path / MANIFEST_FILE).is_file()):
        return Source(GIT, url, ref, raw)
    if not path.exists() and (ref or path.suffix == ".git"):
        return Source(GIT, url, ref, raw)  # let git say what is missing
    if ref:
        raise UsageError(f"`{path}` is not a Git repository, so `#{ref}` cannot be checked out", hint=_SOURCE_HINT)
    return _local(path, raw)


def _local(path: Path, raw: str) -> Source:
    if path.is_file():
        return Source(FILE, str(path.resolve()), None, raw)
    if path.is_dir():
        if (path / MANIFEST_FILE).is_file():
            return Source(FOLDER, str(path.resolve()), None, raw)
        if is_git_repo(path):
            return Source(GIT, path.resolve().as_uri(), None, raw)
        raise UsageError(f"`{path}` has no `manifest.json`", hint=_SOURCE_HINT)
    raise UsageError(f"`{redact_credentials(raw)}` is neither an existing file or folder nor a Git URL",
                     hint=_SOURCE_HINT)
