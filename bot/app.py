"""The composition root: builds the core, the relay and the scheduler from a config (prod and tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import AppConfig
from bot.keys import FileKeyStore, KeyStore, load_kek
from bot.persistence.db import make_engine, make_sessionmaker
from bot.persistence.migrate import upgrade
from bot.ports import ChatPort, Clock, SystemClock
from bot.prompts import Prompts
from bot.service.core import Convene
from bot.service.relay import OutboxRelay
from bot.service.scheduler import DeadlineScheduler

log = logging.getLogger("convene")


def key_store_from_config(config: AppConfig) -> KeyStore:
    a = config.anonymity
    key_file = a.kek_file
    create = False
    if key_file is None:
        # Zero-setup for newcomers: a KEK file beside the wrapped keys. Still never in the database;
        # deployments set the environment variable or point kek_file at a secret mount.
        key_file = str(Path(a.key_dir) / "kek.b64")
        create = True
    return FileKeyStore(a.key_dir, load_kek(a.kek_env, key_file, create_file=create))


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
) -> App:
    engine = engine or make_engine(config.database.url)
    if migrate:
        await upgrade(engine)
    sessions = make_sessionmaker(engine)
    prompts = Prompts(Path(config.prompts_dir) if config.prompts_dir else None, config.language)
    clock = clock or SystemClock()
    core = Convene(config, sessions, keys or key_store_from_config(config), clock, prompts)
    relay = OutboxRelay(sessions, ports, prompts, clock, config.outbox, engine=engine)
    core.outbox_listeners.append(relay.wake)
    scheduler = DeadlineScheduler(core, config.scheduler.poll_seconds)
    return App(config, engine, sessions, core, relay, scheduler)
