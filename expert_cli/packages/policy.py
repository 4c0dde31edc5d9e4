"""One trust policy for every way an expert is reached: ``install``, ``update``, ``verify``, the SDK's loads,
``chat`` and ``route``.

- A package is *verified* when a valid signature covers its complete ``files`` map. It is accepted when its
  key is trusted (the trust store, or ``--trust-key`` for one install); an unsigned one only with
  ``allow_unsigned`` (``--allow-unsigned``), a verified one by an unknown key only with ``allow_untrusted``
  (the SDK's ``allow_untrusted=True``; the CLI asks for ``trust add`` or ``--trust-key`` instead).
- An expert name is pinned to the key that first installed it (trust on first use, the registry's
  ``publisher_keys``): a package for that name by another key, or unsigned, is refused unless the user
  names the change (``allow_new_publisher``, or ``trust pin NAME KEY``).
- The version inside the signed manifest is the truth: nothing installs below the newest installed version
  of a name without ``allow_downgrade``.
- An installed expert is trusted while its key is (evaluated when it is used): after ``trust rm`` it is
  ``untrusted`` and refused by loads and ``chat`` unless ``allow_untrusted``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from expert_cli.core.errors import InstallError, SignatureError
from expert_cli.core.versions import version_key
from expert_cli.packages.integrity import IntegrityReport
from expert_cli.packages.registry import InstalledExpert, Registry
from expert_cli.packages.signing import fingerprint
from expert_cli.packages.trust import list_trusted_keys, read_pubkey_source

TRUSTED, UNSIGNED, LOCAL, UNTRUSTED = "trusted", "unsigned", "local", "untrusted"
BY_FLAG = "flag"  # ``integrity.trusted_by`` of an install accepted through ``--trust-key``


def decide_trust(report: IntegrityReport, allow_unsigned: bool = False, extra_keys: Iterable[str | Path] = (),
                 allow_untrusted: bool = False) -> str:
    """``trusted``, ``unsigned`` or ``untrusted`` (each only when allowed); otherwise a SignatureError that
    names the flag (and SDK parameter) that would accept it."""
    label = report.label
    if not report.verified:
        if allow_unsigned:
            return UNSIGNED
        what = ("carries a legacy signature that cannot be verified" if report.legacy_signature
                else "is not signed")
        raise SignatureError(f"`{label}` {what}; unsigned packages are not accepted by default",
                             hint="ask its publisher for a signed package, or pass `--allow-unsigned` "
                                  "(`allow_unsigned=True` in the SDK) to accept it")
    trusted = {key.pubkey for key in list_trusted_keys()} | {read_pubkey_source(k) for k in extra_keys}
    if report.pubkey in trusted:
        return TRUSTED
    if allow_untrusted:
        return UNTRUSTED
    raise SignatureError(
        f"`{label}` is signed by key `{report.fingerprint}` (`{report.pubkey}`), "
        "which is not in your trusted keys",
        hint="if you trust its publisher, run `expert-cli trust add <publisher>.pub` or pass "
             "`--trust-key <publisher>.pub` (`allow_untrusted=True` in the SDK)",
    )


def check_publisher(registry: Registry, name: str, pubkey: str | None, label: str,
                    allow_new_publisher: bool = False) -> None:
    """A package for a pinned name must be signed by the pinned key (unless the user allows the change)."""
    pinned = registry.pinned_key(name)
    if pinned is None or pinned == pubkey or allow_new_publisher:
        return
    by = f"signed by another key, `{fingerprint(pubkey)}`" if pubkey else "not signed"
    raise SignatureError(
        f"`{name}` is pinned to the publisher key `{fingerprint(pinned)}` that first installed it, "
        f"but `{label}` is {by}",
        hint=f"if its publisher really changed keys, pass `--allow-new-publisher` or run "
             f"`expert-cli trust pin {name} <publisher>.pub`",
    )


def check_version(registry: Registry, name: str, version: str, allow_downgrade: bool = False) -> None:
    """Nothing installs below the newest installed version of ``name`` unless the user allows it."""
    newest = registry.find(name)
    if newest is None or allow_downgrade or version_key(version) >= version_key(newest.version):
        return
    raise InstallError(f"`{name}@{version}` is older than the installed `{newest.spec}`; "
                       "refusing to downgrade",
                       hint="pass `--allow-downgrade` if you really want the older version")


def installed_trust(entry: InstalledExpert) -> str:
    """The trust of an installed expert now: a signed one is ``trusted`` while its key is in the trust store
    (or was accepted with ``--trust-key`` and not revoked since), ``untrusted`` after that; unsigned and
    local installs keep the state they were accepted with."""
    integrity = entry.extra.get("integrity")
    integrity = integrity if isinstance(integrity, dict) else {}
    recorded, pubkey = integrity.get("trust"), integrity.get("pubkey")
    if not integrity.get("signed") or not isinstance(pubkey, str):
        return recorded if recorded in (UNSIGNED, LOCAL) else UNSIGNED
    if pubkey in {key.pubkey for key in list_trusted_keys()}:
        return TRUSTED
    if recorded == TRUSTED and integrity.get("trusted_by") == BY_FLAG:
        return TRUSTED
    return UNTRUSTED


def check_usable(entry: InstalledExpert, allow_untrusted: bool = False) -> str:
    """The trust of an installed expert about to be used; SignatureError when untrusted and not allowed."""
    state = installed_trust(entry)
    if state == UNTRUSTED and not allow_untrusted:
        key = (entry.extra.get("integrity") or {}).get("pubkey")
        raise SignatureError(f"`{entry.spec}` is signed by key `{fingerprint(key)}`, "
                             "which is no longer trusted",
                             hint="trust its key again with `expert-cli trust add <publisher>.pub`, or pass "
                                  "`--allow-untrusted` (`allow_untrusted=True` in the SDK) to use it anyway")
    return state
