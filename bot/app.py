"""The composition root: builds the core, the relay and the scheduler from a config (prod and tests)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import AppConfig, ConfigError, VaultConfig
from bot.keys import (
    FileKeyStore,
    KeyStore,
    KeyStoreUnreachable,
    KeyUnavailable,
    VaultKeyStore,
    load_kek,
)
from bot.logs import install as install_log_rules
from bot.metrics import NO_METRICS, Metrics
from bot.persistence.db import make_engine, make_sessionmaker
from bot.persistence.schema import is_current
from bot.ports import ChatPort, Clock, SystemClock
from bot.prompts import Prompts
from bot.service.core import Convene
from bot.service.handlers.outages import ensure_watch
from bot.service.handlers.retention import ensure_daily_pass
from bot.service.relay import OutboxRelay
from bot.service.scheduler import DeadlineScheduler

log = logging.getLogger("convene")


TRIAL_KEK_FILE = "kek.b64"


def key_store_from_config(config: AppConfig) -> KeyStore:
    """The key store ``anonymity`` names, checked before anything starts.

    A KEK must come from outside: ``kek_env`` or a ``kek_file`` outside ``key_dir``. Otherwise each
    host of a multi-worker deployment would make a KEK of its own (and open none of the others'
    keys), and a copy of ``key_dir`` would hold both the wrapped keys and what opens them (threat
    C2). Only ``anonymity.trial: true`` (``convene console`` sets it) lets convene make the KEK
    itself, beside the keys, for a trial on one host."""
    a = config.anonymity
    if a.backend == "vault":
        return _vault_key_store(a.vault)
    key_dir = Path(a.key_dir)
    trial_kek = key_dir / TRIAL_KEK_FILE
    if not a.trial:
        inside = [f for f in (a.kek_file, trial_kek) if f is not None and _within(Path(f), key_dir)]
        found = [f for f in inside if Path(f).exists() or f == a.kek_file]
        if found:
            raise ConfigError(
                f"anonymity: the key-encryption key file {found[0]} is inside key_dir {a.key_dir}, so a "
                "copy of that directory would open every round key. Move it to a secret store and point "
                f"anonymity.kek_file (outside key_dir) or {a.kek_env} at it; for a trial on one host, "
                "set anonymity.trial: true"
            )
        if not os.environ.get(a.kek_env) and a.kek_file is None:
            raise KeyUnavailable(
                f"no key-encryption key: set {a.kek_env} (base64 of 32 random bytes) or anonymity.kek_file, "
                "the same on every host; for a trial on one host, set anonymity.trial: true"
            )
    key_file = a.kek_file or str(trial_kek)
    store = FileKeyStore(a.key_dir, load_kek(a.kek_env, key_file, create_file=a.trial and not a.kek_file))
    store.check()
    return store


def _within(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def _vault_key_store(v: VaultConfig) -> VaultKeyStore:
    def token() -> str:
        if v.token_file:
            try:
                found = Path(v.token_file).read_text().strip()
            except OSError as err:
                raise KeyUnavailable(f"cannot read anonymity.vault.token_file ({err.strerror})") from None
        else:
            found = os.environ.get(v.token_env, "").strip()
        if not found:
            raise KeyUnavailable(f"no Vault token: set {v.token_env} or anonymity.vault.token_file")
        return found

    store = VaultKeyStore(
        v.address,
        token,
        mount=v.mount,
        path=v.path,
        namespace=v.namespace,
        verify=v.ca_cert or True,
        timeout=v.timeout_seconds,
    )
    try:
        store.check()
    except KeyStoreUnreachable as err:
        raise KeyUnavailable(str(err)) from None
    return store


@dataclass
class App:
    config: AppConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    core: Convene
    relay: OutboxRelay
    scheduler: DeadlineScheduler
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start_background(self) -> None:
        """The relay and the deadline poller, side by side in this event loop."""
        self.tasks.append(asyncio.create_task(self.relay.run_forever(self.stop), name="convene-relay"))
        self.tasks.append(
            asyncio.create_task(self.scheduler.run_forever(self.stop), name="convene-scheduler")
        )

    async def aclose(self) -> None:
        self.stop.set()
        self.relay.wake()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await self.core.ingest.aclose()
        await self.core.services.compactor.wait()
        await self.relay.aclose()  # frees its worker identity for the next process
        for port in self.relay.ports.values():
            close = getattr(port, "aclose", None)  # ports holding connections (Slack's HTTP session)
            if close is not None:
                await close()
        await self.engine.dispose()


async def build_app(
    config: AppConfig,
    ports: Mapping[str, ChatPort],
    *,
    keys: KeyStore | None = None,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    migrate: bool = True,
    metrics: Metrics = NO_METRICS,
) -> App:
    install_log_rules()  # libraries never log a payload, whoever configures logging
    if keys is None:  # first: a refused key store leaves the database untouched
        keys = key_store_from_config(config)
    engine = engine or make_engine(config.database.url)
    if migrate and not await is_current(engine):
        from bot.persistence.migrate import upgrade  # Alembic only when there is work for it

        await upgrade(engine)
    sessions = make_sessionmaker(engine)
    prompts = Prompts(Path(config.prompts_dir) if config.prompts_dir else None, config.language)
    clock = clock or SystemClock()
    core = Convene(config, sessions, keys, clock, prompts)
    relay = OutboxRelay(sessions, ports, prompts, clock, config.outbox, engine=engine)
    core.outbox_listeners.append(relay.wake)
    core.metrics = relay.metrics = metrics
    batch = DeadlineScheduler.batch_for(engine.dialect.name)
    scheduler = DeadlineScheduler(core, config.scheduler.poll_seconds, batch)
    if migrate:  # a deployment's database: the daily retention pass is scheduled (due now if new)
        await ensure_daily_pass(sessions, clock)
        await ensure_watch(sessions, clock)  # the outbox watch (stalled channels), every minute
    return App(config, engine, sessions, core, relay, scheduler)
