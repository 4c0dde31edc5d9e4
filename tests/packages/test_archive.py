"""Reproducible writing and hostile-archive refusal in expert_cli.packages.archive."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hostile_archives import HOSTILE, REASONS, SMALL
from package_helpers import add_member, tree

from expert_cli.core.errors import PackageError
from expert_cli.packages.archive import (
    ArchiveEntry,
    extract_archive,
    inspect_archive,
    read_member,
    write_archive,
)


def test_every_hostile_archive_has_its_pinned_reason() -> None:
    assert sorted(HOSTILE) == sorted(REASONS)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_before_anything_is_written(case: str, tmp_path: Path) -> None:
    package = tmp_path / "hostile.expert"
    HOSTILE[case](package)
    dest = tmp_path / "out" / "staged"
    with pytest.raises(PackageError) as info:
        extract_archive(package, dest, SMALL)
    assert "hostile.expert" in info.value.message and REASONS[case] in info.value.message, info.value.message
    # everywhere a member could land (`../x` from `out/staged` is `out/x`): nothing but the package itself
    assert set(tree(tmp_path)) <= {"hostile.expert", "out", "out/staged"}, f"{case} wrote {tree(tmp_path)}"
    assert tree(dest) == []


def test_the_unicode_duplicate_guard_folds_case_and_normal_forms(tmp_path: Path) -> None:
    """NFC/NFD, ß/SS and É/é are one file on a case-insensitive or normalising filesystem."""
    for case in ("duplicate-nfc-nfd", "duplicate-sharp-s", "duplicate-unicode-case"):
        HOSTILE[case](tmp_path / f"{case}.expert")
        with pytest.raises(PackageError, match="appears twice"):
            inspect_archive(tmp_path / f"{case}.expert")
    with tarfile.open(tmp_path / "distinct.expert", "w:gz") as tar:  # different names stay accepted
        for name in ("manifest.json", "strasse.txt", "strase.txt", "cafe.txt"):
            add_member(tar, name, b"x")
    assert len(inspect_archive(tmp_path / "distinct.expert")) == 4


def test_write_archive_is_byte_reproducible_and_ordered(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\x00\x01" * 1000)
    entries = [ArchiveEntry("manifest.json", b"{}"), ArchiveEntry("w.bin", tmp_path / "w.bin")]
    write_archive(entries, tmp_path / "a.expert")
    (tmp_path / "w.bin").touch()  # a new mtime must not change the bytes
    write_archive(entries, tmp_path / "b.expert")
    assert (tmp_path / "a.expert").read_bytes() == (tmp_path / "b.expert").read_bytes()
    with tarfile.open(tmp_path / "a.expert") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["manifest.json", "w.bin"]
    assert {(m.mtime, m.uid, m.gid, m.mode, m.uname) for m in members} == {(315532800, 0, 0, 0o644, "")}


def test_extract_round_trip_and_read_member(tmp_path: Path) -> None:
    entries = [ArchiveEntry("manifest.json", b'{"a": 1}'), ArchiveEntry("tests/case.json", b"[]")]
    write_archive(entries, tmp_path / "p.expert")
    members = extract_archive(tmp_path / "p.expert", tmp_path / "x")
    assert [m.name for m in members] == ["manifest.json", "tests/case.json"]
    assert (tmp_path / "x" / "tests" / "case.json").read_bytes() == b"[]"
    assert read_member(tmp_path / "p.expert", "manifest.json") == b'{"a": 1}'
    assert read_member(tmp_path / "p.expert", "absent.json") is None


def test_extract_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    write_archive([ArchiveEntry("manifest.json", b"{}")], tmp_path / "p.expert")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(PackageError, match="not empty"):
        extract_archive(tmp_path / "p.expert", tmp_path / "x")


def test_inspect_accepts_folder_entries_and_leading_dot_slash(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "p.expert", "w:gz") as tar:
        add_member(tar, "./manifest.json", b"{}")
        add_member(tar, "tests/", b"", type=tarfile.DIRTYPE)
        add_member(tar, "tests/a.json", b"[]")
    assert [m.name for m in inspect_archive(tmp_path / "p.expert")] == ["manifest.json", "tests", "tests/a.json"]


def test_default_limits_stop_a_gzip_bomb_by_ratio(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.expert"
    with tarfile.open(bomb, "w:gz") as tar:  # 48 MiB of zeros, ~50 kB on disk: under the size caps
        add_member(tar, "manifest.json", b"{}")
        info = tarfile.TarInfo("adapter_model.safetensors")
        info.size = 48 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(PackageError, match="decompression bomb"):
        extract_archive(bomb, tmp_path / "x")
    assert tree(tmp_path / "x") == []
