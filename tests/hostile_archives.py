"""A generated set of hostile ``.expert`` archives, built with plain ``tarfile``/``gzip``.

Each builder writes one archive that the installer must refuse: path traversal, absolute paths, links,
devices, duplicate names, oversize and over-count members (against ``SMALL`` caps), gzip bombs, truncated
or corrupt gzip, and files that are not tar archives at all.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

from package_helpers import add_member

from expert_cli.packages.archive import ArchiveLimits

SMALL = ArchiveLimits(max_members=20, max_member_bytes=1 << 20, max_total_bytes=2 << 20,
                      ratio_floor_bytes=256 << 10, max_ratio=50)


def _tar(path: Path, build: Callable[[tarfile.TarFile], None], fmt: int = tarfile.GNU_FORMAT) -> None:
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        add_member(tar, "manifest.json", b"{}")
        build(tar)


def _member(name: str, data: bytes = b"x", **attrs) -> Callable[[tarfile.TarFile], None]:
    return lambda tar: add_member(tar, name, data, **attrs)


def _members(*specs: tuple) -> Callable[[tarfile.TarFile], None]:
    def build(tar: tarfile.TarFile) -> None:
        for spec in specs:
            add_member(tar, *spec[:2], **(spec[2] if len(spec) > 2 else {}))
    return build


def _raw(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _gzip_bomb(path: Path) -> None:  # 8 MiB of zeros as one member: ~8 kB on disk, far past the ratio cap
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("adapter_model.safetensors")
        info.size = 8 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))


def _zero_stream_bomb(path: Path) -> None:  # not even a tar header: just a huge run of zeros after one member
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as tar:
        add_member(tar, "manifest.json", b"{}")
    path.write_bytes(gzip.compress(inner.getvalue()[:-1024] + bytes(16 << 20)))


def _truncated(path: Path) -> None:
    _tar(path, _member("adapter_model.safetensors", bytes(range(256)) * 400))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_crc(path: Path) -> None:
    _tar(path, _member("README.md", b"hello" * 100))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the gzip CRC32 trailer
    path.write_bytes(bytes(data))


def _sparse(path: Path) -> None:
    """A GNU sparse member ('S'): tarfile counts it as a regular file, so only the sparse check stops it."""
    _tar(path, _member("adapter_model.safetensors", b"x" * 10))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    header = 512 + 512  # the second member's header (manifest.json, 1 byte of data, takes two blocks)
    assert raw[header:header + 25].rstrip(b"\0") == b"adapter_model.safetensors"
    raw[header + 156] = ord("S")
    raw[header + 148:header + 156] = b" " * 8
    raw[header + 148:header + 155] = f"{sum(raw[header:header + 512]):06o}\0".encode()
    path.write_bytes(gzip.compress(bytes(raw)))


HOSTILE: dict[str, Callable[[Path], None]] = {
    "traversal-dotdot": lambda p: _tar(p, _member("../evil.txt")),
    "traversal-nested": lambda p: _tar(p, _member("tests/../../evil.txt")),
    "traversal-deep": lambda p: _tar(p, _member("a/b/../../../evil.txt")),
    "absolute-path": lambda p: _tar(p, _member("/tmp/evil.txt")),
    "absolute-etc": lambda p: _tar(p, _member("/etc/cron.d/evil")),
    "windows-drive": lambda p: _tar(p, _member("C:/evil.txt")),
    "backslash-traversal": lambda p: _tar(p, _member("..\\evil.txt")),
    "symlink-out": lambda p: _tar(p, _member("link", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")),
    "symlink-relative": lambda p: _tar(p, _member("link", b"", type=tarfile.SYMTYPE, linkname="../../x")),
    "symlink-inside": lambda p: _tar(p, _member("link", b"", type=tarfile.SYMTYPE, linkname="manifest.json")),
    "symlink-then-write": lambda p: _tar(p, _members(("d", b"", {"type": tarfile.SYMTYPE, "linkname": "/tmp"}),
                                                     ("d/evil.txt", b"x"))),
    "hardlink-out": lambda p: _tar(p, _member("hard", b"", type=tarfile.LNKTYPE, linkname="/etc/passwd")),
    "hardlink-inside": lambda p: _tar(p, _member("hard", b"", type=tarfile.LNKTYPE, linkname="manifest.json")),
    "char-device": lambda p: _tar(p, _member("null", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3)),
    "block-device": lambda p: _tar(p, _member("sda", b"", type=tarfile.BLKTYPE, devmajor=8, devminor=0)),
    "fifo": lambda p: _tar(p, _member("pipe", b"", type=tarfile.FIFOTYPE)),
    "contiguous-file": lambda p: _tar(p, _member("weird", b"x", type=tarfile.CONTTYPE)),
    "duplicate-name": lambda p: _tar(p, _member("manifest.json", b'{"name": "evil"}')),
    "duplicate-case": lambda p: _tar(p, _member("MANIFEST.json", b"{}")),
    "duplicate-dot-slash": lambda p: _tar(p, _member("./manifest.json", b"{}")),
    "duplicate-nfc-nfd": lambda p: _tar(p, _members(("caf\u00e9.txt", b"a"), ("cafe\u0301.txt", b"b"))),
    "duplicate-sharp-s": lambda p: _tar(p, _members(("stra\u00dfe.txt", b"a"), ("STRASSE.txt", b"b"))),
    "duplicate-unicode-case": lambda p: _tar(p, _members(("\u00c9t\u00e9.txt", b"a"), ("\u00e9t\u00e9.txt", b"b"))),
    "sparse-member": _sparse,
    "file-then-child": lambda p: _tar(p, _member("manifest.json/evil", b"x")),
    "empty-component": lambda p: _tar(p, _member("tests//evil", b"x")),
    "dot-component": lambda p: _tar(p, _member("tests/./evil", b"x")),
    "control-char-name": lambda p: _tar(p, _member("evil\nname", b"x")),
    "too-deep": lambda p: _tar(p, _member("/".join("d" * 1 for _ in range(12)) + "/f", b"x")),
    "long-name": lambda p: _tar(p, _member("n" * 300, b"x")),
    "oversize-member": lambda p: _tar(p, _member("big.bin", bytes(2 << 20))),
    "over-count": lambda p: _tar(p, _members(*[(f"f{i}.txt", b"x") for i in range(25)])),
    "over-total": lambda p: _tar(p, _members(*[(f"part{i}.bin", bytes(900 << 10)) for i in range(3)])),
    "pax-traversal": lambda p: _tar(p, _member("a" * 120 + "/../../evil.txt"), fmt=tarfile.PAX_FORMAT),
    "gzip-bomb": _gzip_bomb,
    "zero-stream-bomb": _zero_stream_bomb,
    "truncated-gzip": _truncated,
    "corrupt-crc": _corrupt_crc,
    "not-gzip": _raw(b"this is not a package at all\n" * 10),
    "gzip-not-tar": _raw(gzip.compress(b"plain text, not a tar archive\n" * 50)),
    "empty-file": _raw(b""),
    "empty-tar": _raw(gzip.compress(bytes(1024))),
    "zlib-not-gzip": _raw(zlib.compress(b"x" * 1000)),
}


# What each refusal must say: pinned per case, so removing any one guard (and leaving the others, or tarfile's
# own filter, to catch the member later with another message) fails its case.
REASONS: dict[str, str] = {
    "traversal-dotdot": "climbs out of the package", "traversal-nested": "climbs out of the package",
    "traversal-deep": "climbs out of the package", "pax-traversal": "climbs out of the package",
    "absolute-path": "is an absolute path", "absolute-etc": "is an absolute path", "windows-drive": "is an absolute path",
    "backslash-traversal": "backslashes", "control-char-name": "control characters",
    "symlink-out": "is a symbolic link", "symlink-relative": "is a symbolic link", "symlink-inside": "is a symbolic link",
    "symlink-then-write": "is a symbolic link", "hardlink-out": "is a hard link", "hardlink-inside": "is a hard link",
    "char-device": "is a device or FIFO", "block-device": "is a device or FIFO", "fifo": "is a device or FIFO",
    "contiguous-file": "unsupported type", "sparse-member": "unsupported type",
    "duplicate-name": "appears twice", "duplicate-case": "appears twice", "duplicate-dot-slash": "appears twice",
    "duplicate-nfc-nfd": "appears twice", "duplicate-sharp-s": "appears twice", "duplicate-unicode-case": "appears twice",
    "file-then-child": "sits below a member that is a file", "empty-component": "empty or `.` path component",
    "dot-component": "empty or `.` path component", "too-deep": "too long or too deep", "long-name": "too long or too deep",
    "oversize-member": "-byte cap", "gzip-bomb": "-byte cap", "over-count": "too many members or bytes",
    "over-total": "decompression bomb", "zero-stream-bomb": "decompression bomb",
    "truncated-gzip": "not a valid .expert package", "corrupt-crc": "CRC check failed", "not-gzip": "Not a gzipped file",
    "gzip-not-tar": "not a valid .expert package", "empty-file": "empty file", "empty-tar": "is an empty archive",
    "zlib-not-gzip": "Not a gzipped file",
}
