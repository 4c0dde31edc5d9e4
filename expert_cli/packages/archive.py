"""Reproducible writing and defensive reading of ``.expert`` archives (gzip-compressed tar).

Writing: entries in the caller's order, fixed mtime/uid/gid/mode, GNU headers, a gzip header without a file
name or time, so the same inputs always give the same bytes.

Reading happens in two passes over a size-bounded stream. Pass one checks every member header (safe relative
name, regular file or folder only, no duplicates, size and count caps) before anything is written. Pass two
extracts the same members into an empty folder with the ``tarfile`` ``data`` filter as a second guard.
A decompression bomb is stopped by the byte cap and by the compression-ratio cap while it is being read.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from expert_cli.core.errors import PackageError
from expert_cli.core.progress import ProgressCallback, report

FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, as reproducible wheels use
GZIP_LEVEL = 6
READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError)
HOSTILE_HINT = "do not install it: the file is corrupt or was built to attack the installer"


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps against hostile archives; the defaults are far above any real adapter package."""

    max_members: int = 4096
    max_member_bytes: int = 4 << 30
    max_total_bytes: int = 8 << 30
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 32 << 20
    max_name_length: int = 255
    max_depth: int = 8


@dataclass(frozen=True)
class ArchiveEntry:
    """One file to write: its name inside the archive and its content (a file path or bytes)."""

    name: str
    source: Path | bytes

    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    def open(self) -> BinaryIO:
        return io.BytesIO(self.source) if isinstance(self.source, bytes) else open(self.source, "rb")


@dataclass(frozen=True)
class ArchiveMember:
    name: str
    size: int
    is_dir: bool = False


def write_archive(entries: Sequence[ArchiveEntry], out: Path, progress: ProgressCallback | None = None) -> None:
    """Write ``entries`` (in order) as a byte-reproducible gzip tar at ``out``."""
    total = sum(entry.size() for entry in entries)
    done = 0
    with open(out, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.size, info.mtime, info.mode = entry.size(), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with entry.open() as handle:
                tar.addfile(info, handle)
            done += info.size
            report(progress, "packing", done, total)


class _BoundedReader:
    """A read-only view of the decompressed stream that refuses to grow past the caps."""

    def __init__(self, raw: BinaryIO, label: str, limits: ArchiveLimits, progress: ProgressCallback | None,
                 compressed_size: int) -> None:
        self._raw, self._gz, self._label, self._limits = raw, gzip.GzipFile(fileobj=raw, mode="rb"), label, limits
        self._progress, self._compressed_size, self.total = progress, compressed_size, 0

    def read(self, size: int = -1) -> bytes:
        data = self._gz.read(size if size is not None and size >= 0 else 1 << 20)
        self.total += len(data)
        limits = self._limits
        if self.total > limits.max_total_bytes + (1 << 20):
            raise PackageError(f"`{self._label}` unpacks to more than {limits.max_total_bytes} bytes", hint=HOSTILE_HINT)
        consumed = max(self._raw.tell(), 1)
        if self.total > limits.ratio_floor_bytes and self.total / consumed > limits.max_ratio:
            raise PackageError(f"`{self._label}` is a decompression bomb (ratio above {limits.max_ratio:.0f}:1)",
                               hint=HOSTILE_HINT)
        report(self._progress, "extracting", min(consumed, self._compressed_size), self._compressed_size)
        return data


@contextlib.contextmanager
def _open_stream(path: Path, limits: ArchiveLimits, progress: ProgressCallback | None = None,
                 drain: bool = True) -> Iterator[tarfile.TarFile]:
    """A streaming tar reader over the bounded gzip stream. With ``drain``, the rest of the stream is read
    after the last member, so the gzip CRC and length are checked and trailing data counts against the caps."""
    try:
        with open(path, "rb") as raw:
            reader = _BoundedReader(raw, path.name, limits, progress, path.stat().st_size)
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                yield tar
            while drain and reader.read(1 << 20):
                pass
    except PackageError:
        raise
    except FileNotFoundError as exc:
        raise PackageError(f"no package at `{path}`") from exc
    except IsADirectoryError as exc:
        raise PackageError(f"`{path}` is a folder, not a `.expert` file",
                           hint="build a package from an expert folder with `expert-cli package <folder>`") from exc
    except READ_ERRORS as exc:
        raise PackageError(f"`{path.name}` is not a valid .expert package (a gzip tar): {exc or type(exc).__name__}",
                           hint=HOSTILE_HINT) from exc


def safe_member_name(raw_name: str, limits: ArchiveLimits) -> str:
    """The member's relative name, or a ``ValueError`` saying why it is unsafe."""
    if not raw_name or any(ord(ch) < 32 or ch in "\\\x7f" for ch in raw_name):
        raise ValueError("has an empty name or control characters / backslashes in it")
    if raw_name.startswith("/") or (len(raw_name) > 1 and raw_name[1] == ":"):
        raise ValueError("is an absolute path")
    name = raw_name
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    parts = name.split("/")
    if ".." in parts:
        raise ValueError("climbs out of the package with `..`")
    if not name or any(part in ("", ".") for part in parts):
        raise ValueError("has an empty or `.` path component")
    if len(name) > limits.max_name_length or len(parts) > limits.max_depth:
        raise ValueError("has a name that is too long or too deep")
    return name


def check_member(info: tarfile.TarInfo, limits: ArchiveLimits) -> ArchiveMember:
    """Vet one header: a safe name, a regular file or folder, within the size cap."""
    name = safe_member_name(info.name, limits)
    if info.issym():
        raise ValueError(f"is a symbolic link (to `{info.linkname}`)")
    if info.islnk():
        raise ValueError(f"is a hard link (to `{info.linkname}`)")
    if info.ischr() or info.isblk() or info.isfifo():
        raise ValueError("is a device or FIFO")
    if info.isdir():
        return ArchiveMember(name, 0, True)
    if not info.isreg() or info.issparse() or info.type == tarfile.CONTTYPE:
        raise ValueError(f"has an unsupported type `{info.type!r}`")
    if info.size > limits.max_member_bytes:
        raise ValueError(f"is {info.size} bytes, above the {limits.max_member_bytes}-byte cap")
    return ArchiveMember(name, info.size)


class _MemberLedger:
    """Running checks across members: count, total size, duplicates (case- and Unicode-insensitive)."""

    def __init__(self, label: str, limits: ArchiveLimits) -> None:
        self.label, self.limits, self.members = label, limits, []  # type: ignore[var-annotated]
        self._seen: dict[str, bool] = {}
        self._total = 0

    def add(self, info: tarfile.TarInfo) -> ArchiveMember:
        try:
            member = check_member(info, self.limits)
            self._check_place(member)
        except ValueError as exc:
            raise PackageError(f"`{self.label}` is unsafe: member `{info.name[:120]}` {exc}", hint=HOSTILE_HINT) from None
        self._total += member.size
        if len(self.members) + 1 > self.limits.max_members or self._total > self.limits.max_total_bytes:
            raise PackageError(f"`{self.label}` has too many members or bytes (caps: {self.limits.max_members} "
                               f"members, {self.limits.max_total_bytes} bytes)", hint=HOSTILE_HINT)
        self.members.append(member)
        return member

    def _check_place(self, member: ArchiveMember) -> None:
        key = unicodedata.normalize("NFC", member.name).casefold()
        if key in self._seen:
            if member.is_dir and self._seen[key]:
                return
            raise ValueError("appears twice (or differs from another member only by case)")
        parts = key.split("/")
        for depth in range(1, len(parts)):
            if self._seen.get("/".join(parts[:depth])) is False:
                raise ValueError("sits below a member that is a file")
        self._seen[key] = member.is_dir


def inspect_archive(path: Path, limits: ArchiveLimits | None = None) -> list[ArchiveMember]:
    """Pass one: check every member header and return them; writes nothing."""
    ledger = _MemberLedger(path.name, limits or ArchiveLimits())
    with _open_stream(path, ledger.limits) as tar:
        for info in tar:
            ledger.add(info)
    if not ledger.members:
        raise PackageError(f"`{path.name}` is an empty archive", hint=HOSTILE_HINT)
    return ledger.members


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits | None = None,
                    progress: ProgressCallback | None = None) -> list[ArchiveMember]:
    """Pass two: extract the vetted members into the empty folder ``dest`` and return them."""
    limits = limits or ArchiveLimits()
    expected = inspect_archive(path, limits)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise PackageError(f"cannot extract into `{dest}`: the folder is not empty")
    with _open_stream(path, limits, progress) as tar:
        for index, info in enumerate(tar):
            seen = ArchiveMember(safe_member_name(info.name, limits), 0 if info.isdir() else info.size, info.isdir())
            if index >= len(expected) or seen != expected[index]:
                raise PackageError(f"`{path.name}` changed while it was being read", hint="try again")
            info.name = seen.name
            tar.extract(info, dest, filter="data")
    return expected


def read_member(path: Path, name: str, limits: ArchiveLimits | None = None, max_bytes: int = 16 << 20) -> bytes | None:
    """The bytes of one member (vetting every header up to it), or None when the archive has no such member."""
    ledger = _MemberLedger(path.name, limits or ArchiveLimits())
    with _open_stream(path, ledger.limits, drain=False) as tar:
        for info in tar:
            member = ledger.add(info)
            if member.name == name and not member.is_dir:
                if member.size > max_bytes:
                    raise PackageError(f"`{name}` in `{path.name}` is larger than {max_bytes} bytes", hint=HOSTILE_HINT)
                handle = tar.extractfile(info)
                return handle.read() if handle is not None else None
    return None
