"""Which key store a config builds, and what `convene run` refuses (issue 13 item 5, threat C2):
no KEK of its own making and no KEK file beside the keys unless the config says this is a trial;
`convene console` and `convene demo` stay zero-setup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.app import key_store_from_config
from bot.config import ConfigError, parse_config
from bot.keys import FileKeyStore, KeyUnavailable, VaultKeyStore, new_kek
from tests.platform_fakes.vault import FakeVault

ROOT = Path(__file__).resolve().parents[2]


def anonymity(tmp: Path, **values: Any) -> Any:
    return parse_config({"anonymity": {"key_dir": str(tmp / "keys"), **values}})


@pytest.fixture(autouse=True)
def no_kek_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVENE_KEK", raising=False)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)


def test_without_a_kek_a_deployment_refuses_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="CONVENE_KEK") as err:
        key_store_from_config(anonymity(tmp_path))
    assert "anonymity.trial" in str(err.value)
    assert not (tmp_path / "keys").exists()  # no KEK made, nothing written


def test_a_trial_makes_one_kek_beside_the_keys_and_keeps_it(tmp_path: Path) -> None:
    cfg = anonymity(tmp_path, trial=True)
    first = key_store_from_config(cfg)
    first.create("r1")
    kek = tmp_path / "keys" / "kek.b64"
    assert kek.stat().st_mode & 0o777 == 0o600
    again = key_store_from_config(cfg)  # a restart reads the same KEK
    assert again.get("r1") == first.get("r1") is not None


@pytest.mark.parametrize("where", ["keys/kek.b64", "keys/secret/kek", "keys/../keys/k"])
def test_a_kek_file_inside_the_key_directory_is_refused_unless_a_trial(tmp_path: Path, where: str) -> None:
    kek_file = tmp_path / where
    kek_file.parent.mkdir(parents=True, exist_ok=True)
    kek_file.write_text(new_kek())
    with pytest.raises(ConfigError, match="inside key_dir") as err:
        key_store_from_config(anonymity(tmp_path, kek_file=str(kek_file)))
    assert "anonymity.trial" in str(err.value)
    assert isinstance(
        key_store_from_config(anonymity(tmp_path, kek_file=str(kek_file), trial=True)), FileKeyStore
    )


def test_a_trial_kek_left_in_the_key_directory_is_refused_even_with_the_env_kek(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_store_from_config(anonymity(tmp_path, trial=True))  # someone tried convene here first
    monkeypatch.setenv("CONVENE_KEK", new_kek())
    with pytest.raises(ConfigError, match=r"kek\.b64"):
        key_store_from_config(anonymity(tmp_path))


def test_a_kek_from_outside_works_and_hosts_sharing_it_read_each_others_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_mount = tmp_path / "run-secrets" / "convene-kek"
    secret_mount.parent.mkdir()
    secret_mount.write_text(new_kek())
    by_file = key_store_from_config(anonymity(tmp_path, kek_file=str(secret_mount)))
    by_file.create("r1")
    monkeypatch.setenv("CONVENE_KEK", secret_mount.read_text())
    by_env = key_store_from_config(anonymity(tmp_path))  # a second host: the KEK from its environment
    assert by_env.get("r1") == by_file.get("r1") is not None
    assert not (tmp_path / "keys" / "kek.b64").exists()


def test_a_host_with_another_kek_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVENE_KEK", new_kek())
    key_store_from_config(anonymity(tmp_path)).create("r1")
    monkeypatch.setenv("CONVENE_KEK", new_kek())
    with pytest.raises(KeyUnavailable, match="does not open"):
        key_store_from_config(anonymity(tmp_path))


def test_the_vault_backend_needs_an_address_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match=r"anonymity.*vault.address"):
        parse_config({"anonymity": {"backend": "vault"}})


def test_the_vault_backend_is_checked_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeVault(namespace="city") as vault:
        cfg = parse_config(
            {"anonymity": {"backend": "vault", "vault": {"address": vault.url, "namespace": "city"}}}
        )
        with pytest.raises(KeyUnavailable, match="VAULT_TOKEN"):
            key_store_from_config(cfg)
        monkeypatch.setenv("VAULT_TOKEN", "hvs.not-a-token-vault-knows")
        with pytest.raises(KeyUnavailable, match="refused the token"):
            key_store_from_config(cfg)
        monkeypatch.setenv("VAULT_TOKEN", vault.token)
        vault.sealed = True
        with pytest.raises(KeyUnavailable, match="Vault could not"):
            key_store_from_config(cfg)
        vault.sealed = False
        store = key_store_from_config(cfg)
        assert isinstance(store, VaultKeyStore)
        store.create("r1")
        assert vault.paths() == ["convene/round-keys/r1"]
        assert {c.namespace for c in vault.calls} == {"city"}
        assert not (tmp_path / "keys").exists()  # no KEK and no key files on this host


def test_a_vault_token_file_is_read_again_so_a_renewed_token_just_works(tmp_path: Path) -> None:
    with FakeVault() as vault:
        token_file = tmp_path / "vault-token"
        token_file.write_text(vault.token + "\n")
        cfg = parse_config(
            {
                "anonymity": {
                    "backend": "vault",
                    "vault": {"address": vault.url, "token_file": str(token_file)},
                }
            }
        )
        store = key_store_from_config(cfg)
        store.create("r1")
        # Vault Agent renews: a new token in the file, the old one revoked.
        vault.policies["hvs.renewed"] = [""]
        vault.revoke(vault.token)
        token_file.write_text("hvs.renewed\n")
        assert store.get("r1") is not None


def _cli(*args: str, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CONVENE_KEK", "SLACK_BOT_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        input=stdin,
        timeout=60,
    )


def test_convene_run_refuses_a_kek_file_in_the_key_directory_and_console_stays_zero_setup(
    tmp_path: Path,
) -> None:
    # `convene console` with no config at all: a trial, it makes what it needs.
    console = _cli("console", cwd=tmp_path, stdin="quit\n")
    assert console.returncode == 0, console.stderr
    assert (tmp_path / "keys" / "kek.b64").exists()
    # `convene run` in the same place: the trial KEK beside the keys is refused, before any database work.
    config = tmp_path / "c.yaml"
    config.write_text(
        f"database: {{url: 'sqlite+aiosqlite:///{tmp_path}/run.db'}}\nslack: {{enabled: true, mode: http}}\n"
    )
    run = _cli("run", "--config", str(config), cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-x")
    assert run.returncode == 2
    assert "inside key_dir" in run.stderr
    assert "anonymity.trial" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run.db").exists()
    # Without it and without CONVENE_KEK: still refused, naming what to set.
    (tmp_path / "keys" / "kek.b64").unlink()
    run = _cli("run", "--config", str(config), cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-x")
    assert run.returncode == 2
    assert "CONVENE_KEK" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_vault_backend_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hvac", None)  # as if `convene[vault]` was not installed
    monkeypatch.setenv("VAULT_TOKEN", "hvs.x")
    cfg = parse_config({"anonymity": {"backend": "vault", "vault": {"address": "http://127.0.0.1:1"}}})
    with pytest.raises(KeyUnavailable, match=r"convene\[vault\]"):
        key_store_from_config(cfg)
