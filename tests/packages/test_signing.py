"""Ed25519 keys, the signed message, sign_package and signature verification (real crypto)."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from package_helpers import extract_plain, sha256, write_expert

from expert_cli.core import paths
from expert_cli.core.errors import SignatureError, UsageError
from expert_cli.packages.build import build_package
from expert_cli.packages.integrity import check_package_folder
from expert_cli.packages.signer import sign_package
from expert_cli.packages.signing import (
    fingerprint,
    generate_keypair,
    load_private_key,
    parse_pubkey,
    pubkey_text,
    signing_message,
)


@pytest.fixture
def package(tiny_adapter: Path, tmp_path: Path) -> Path:
    return build_package(write_expert(tmp_path / "expert", tiny_adapter), tmp_path / "out.expert").path


def test_keygen_writes_a_0600_pem_and_a_pub_text(tmp_path: Path) -> None:
    pair = generate_keypair()
    assert pair.private_key == paths.keys_dir() / "publisher.pem"
    assert stat.S_IMODE(pair.private_key.stat().st_mode) == 0o600
    assert pair.private_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pair.public_key.name == "publisher.pub"
    assert pair.public_key.read_text() == pair.pubkey + "\n"
    assert pair.pubkey.startswith("ed25519:") and len(pair.pubkey) == 8 + 64
    assert pubkey_text(load_private_key(pair.private_key).public_key()) == pair.pubkey


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = generate_keypair(tmp_path / "k.pem")
    with pytest.raises(UsageError, match="already exists"):
        generate_keypair(tmp_path / "k.pem")
    assert generate_keypair(tmp_path / "k.pem", force=True).pubkey != first.pubkey


def test_the_originals_raw_32_byte_key_is_accepted(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    (tmp_path / "publisher.pem").write_bytes(raw)
    (tmp_path / "publisher.pem").chmod(0o600)
    assert pubkey_text(load_private_key(tmp_path / "publisher.pem").public_key()) == pubkey_text(key.public_key())


def test_bad_keys_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    (tmp_path / "bad.pem").chmod(0o600)
    with pytest.raises(SignatureError, match="not an unencrypted PEM"):
        load_private_key(tmp_path / "bad.pem")
    with pytest.raises(SignatureError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    with pytest.raises(SignatureError, match="not an Ed25519 public key"):
        parse_pubkey("ed25519:zz")


def test_message_is_sorted_path_hash_lines_over_the_canonical_manifest() -> None:
    manifest = {"name": "x", "files": {"b": "2" * 64}, "é": 1.5,
                "integrity": {"signature": "ignored", "files": {"ignored": "0"}, "publisher": "P", "created_at": "T"}}
    message = signing_message({"b": "2" * 64, "a": "1" * 64}, manifest)
    # The canonical form pinned as literal bytes: sorted keys, no spaces, UTF-8 (not \\u escapes), and the
    # integrity block kept but for `signature` and `files`, so the publisher and the date are signed.
    canonical = ('{"files":{"b":"' + "2" * 64 + '"},"integrity":{"created_at":"T","publisher":"P"},'
                 '"name":"x","\u00e9":1.5}').encode("utf-8")
    assert canonical == b'{"files":{"b":"' + b"2" * 64 + b'"},"integrity":{"created_at":"T","publisher":"P"},' \
                        b'"name":"x","\xc3\xa9":1.5}'
    digest = hashlib.sha256(canonical).hexdigest()
    assert message == b"a:" + b"1" * 64 + b"\nb:" + b"2" * 64 + b"\nmanifest.json:" + digest.encode()


def test_sign_then_verify_records_the_integrity_block(package: Path, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    result = sign_package(package, pair.private_key, publisher="ACME")
    assert result.pubkey == pair.pubkey and result.sha256 == sha256(package)
    assert (tmp_path / "out.expert.sha256").read_text().split()[0] == sha256(package)  # sidecar refreshed
    folder = extract_plain(package, tmp_path / "x")
    integrity = json.loads((folder / "manifest.json").read_text())["integrity"]
    assert integrity["publisher"] == "ACME" and integrity["signature_algorithm"] == "ed25519"
    assert integrity["pubkey"] == pair.pubkey and len(integrity["signature"]) == 128
    assert set(integrity["files"]) == {p.name for p in folder.iterdir()}
    report = check_package_folder(folder, "out.expert")
    assert report.verified and report.pubkey == pair.pubkey and report.fingerprint == fingerprint(pair.pubkey)


def test_resigning_replaces_the_signature(package: Path, tmp_path: Path) -> None:
    sign_package(package, generate_keypair(tmp_path / "a.pem").private_key)
    second = generate_keypair(tmp_path / "b.pem")
    sign_package(package, second.private_key)
    report = check_package_folder(extract_plain(package, tmp_path / "x"), "out.expert")
    assert report.verified and report.pubkey == second.pubkey


def test_an_edited_manifest_breaks_the_signature(package: Path, tmp_path: Path) -> None:
    sign_package(package, generate_keypair(tmp_path / "k.pem").private_key)
    folder = extract_plain(package, tmp_path / "x")
    data = json.loads((folder / "manifest.json").read_text())
    data["capabilities"] = ["root-shell"]
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(SignatureError, match="does not match its contents"):
        check_package_folder(folder, "out.expert")


def test_a_swapped_public_key_breaks_the_signature(package: Path, tmp_path: Path) -> None:
    sign_package(package, generate_keypair(tmp_path / "k.pem").private_key)
    folder = extract_plain(package, tmp_path / "x")
    data = json.loads((folder / "manifest.json").read_text())
    data["integrity"]["pubkey"] = generate_keypair(tmp_path / "other.pem").pubkey
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(SignatureError):
        check_package_folder(folder, "out.expert")


def test_signing_a_tampered_package_is_refused(package: Path, tmp_path: Path) -> None:
    from package_helpers import flip_byte, repack

    folder = extract_plain(package, tmp_path / "x")
    flip_byte(folder / "adapter_model.safetensors")
    repack(folder, package)
    from expert_cli.core.errors import PackageError

    with pytest.raises(PackageError, match="does not match its SHA-256"):
        sign_package(package, generate_keypair(tmp_path / "k.pem").private_key)
