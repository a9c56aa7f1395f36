"""Run a real discord.py client against :class:`tests.platform_fakes.discord.FakeDiscord`."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import discord

from tests.platform_fakes.discord import FakeDiscord

C = TypeVar("C", bound=discord.Client)


def client_kwargs(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for a test ``Client``/``Bot``: non-privileged default intents,
    ``guild_ready_timeout`` shrunk (default 2 s after the last GUILD_CREATE), no message
    cache, and ``AllowedMentions.none()`` as the client-wide default."""
    kw: dict[str, Any] = {
        "intents": discord.Intents.default(),
        "guild_ready_timeout": 0.01,
        "max_messages": None,
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    kw.update(overrides)
    return kw


@contextlib.asynccontextmanager
async def running_client(
    fake: FakeDiscord,
    client: C,
    *,
    token: str | None = None,
    ready_timeout: float = 5.0,
    check_tasks: bool = True,
) -> AsyncIterator[C]:
    """Start ``client`` against ``fake`` (which must be patched in, see
    ``FakeDiscord.patch_discord``), wait for ``on_ready``, and on exit close it and wait
    until its tasks are gone (``check_tasks``: fail if any discord.py task dangles).

    A start-up failure (``LoginFailure``, ``PrivilegedIntentsRequired``...) is re-raised.
    """
    if fake.rest_base != discord.http.Route.BASE:
        raise RuntimeError("discord.py is not pointed at this fake: use `with fake.patch_discord():`")
    before = asyncio.all_tasks()
    runner = asyncio.create_task(
        client.start(token if token is not None else fake.token), name="fake-discord-client"
    )
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait(
            {runner, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if runner in done:
            runner.result()  # raises the start-up error
            raise RuntimeError("client.start() returned before the client was ready")
        if ready not in done:
            raise TimeoutError(f"discord.py client not ready after {ready_timeout}s")
        yield client
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(runner, 5.0)
        if check_tasks:
            await _no_dangling_tasks(before)


def _from_discord_py(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and f"{os.sep}discord{os.sep}" in code.co_filename


async def _no_dangling_tasks(before: set[asyncio.Task[Any]], grace: float = 2.0) -> None:
    """Tasks started by discord.py (ready/dispatch/view tasks) must finish after close()."""
    me = asyncio.current_task()
    # Client.close() leaves view timeout tasks sleeping (an ephemeral response's view gets a
    # 15 min timeout even with timeout=None); they would only fire stop(), so cancel them.
    timers = [
        t
        for t in asyncio.all_tasks() - before
        if getattr(t.get_coro(), "__qualname__", "").endswith("__timeout_task_impl")
    ]
    for t in timers:
        t.cancel()
    await asyncio.gather(*timers, return_exceptions=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while True:
        left = [
            t for t in asyncio.all_tasks() - before if t is not me and not t.done() and _from_discord_py(t)
        ]
        if not left:
            return
        if loop.time() > deadline:
            raise AssertionError(f"discord.py tasks still running after close(): {left}")
        await asyncio.sleep(0.01)
