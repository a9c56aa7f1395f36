"""Discord sharding across workers: each worker runs the shards ``discord.shard_ids`` names, of
``discord.shard_count``; a guild's interactions reach only the worker holding its shard, which
answers them (the fake gateway routes by Discord's rule, ``(guild_id >> 22) % shard_count``)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.discord.client import ConveneClient, ShardedConveneClient
from adapters.discord.runner import make_client
from bot.config import ConfigError, parse_config
from tests.adapters.discord.rig import make_rig
from tests.platform_fakes.discord_client import running_client


def test_shard_ids_need_a_count_and_must_lie_inside_it() -> None:
    for bad, why in (
        ({"shard_ids": [0]}, "needs shard_count"),
        ({"shard_ids": [0, 2], "shard_count": 2}, r"\[2\] are outside 0..1"),
        ({"shard_ids": [1, 1], "shard_count": 2}, "duplicates"),
        ({"shard_ids": [], "shard_count": 2}, "lists no shard"),
    ):
        with pytest.raises(ConfigError, match=why):
            parse_config({"discord": bad})
    config = parse_config({"discord": {"shard_ids": [1], "shard_count": 2}}).discord
    assert config.shard_ids == [1]


async def test_two_workers_split_the_shards_and_a_guild_is_answered_by_its_shard(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig:
        guild = int(rig.fake.channel["guild_id"])
        owner = (guild >> 22) % 2
        clients: dict[int, ConveneClient] = {}
        for shard in (0, 1):
            config = replace(rig.app.config.discord, shard_count=2, shard_ids=[shard])
            client = make_client(rig.app, config, guild_ready_timeout=0.01)
            assert isinstance(client, ShardedConveneClient)
            assert client.shard_ids == [shard]
            assert client.shard_count == 2
            clients[shard] = client
        async with contextlib.AsyncExitStack() as stack:
            for shard in (0, 1):
                await stack.enter_async_context(running_client(rig.fake, clients[shard]))
            assert sorted(i["shard"] for i in rig.fake.identifies) == [[0, 2], [1, 2]]
            assert clients[owner].get_guild(guild) is not None
            assert clients[1 - owner].get_guild(guild) is None
            # The worker holding the guild's shard answers; the other never sees the interaction.
            rig.port.attach(clients[owner])
            assert await rig.reply(await rig.slash("alice", "help"))
            seen = {
                s.identify["shard"][0]
                for s in rig.fake._sessions.values()
                if any(f["t"] == "INTERACTION_CREATE" for f in s.log)
            }
            assert seen == {owner}


def test_a_workers_file_laid_over_the_shared_config_sets_its_shards(tmp_path: Path) -> None:
    from bot.config import load_config

    shared = tmp_path / "convene.yaml"
    shared.write_text("discord: {enabled: true, shard_count: 2, guild_ids: [1]}\nlogging: {format: json}\n")
    worker = tmp_path / "worker-b.yaml"
    worker.write_text("discord: {shard_ids: [1]}\n")
    config = load_config(shared, worker)
    assert config.discord.shard_ids == [1]
    assert config.discord.shard_count == 2
    assert config.discord.guild_ids == ["1"]
    assert config.logging.format == "json"
    worker.write_text("discord: {shard_ids: [2]}\n")
    with pytest.raises(ConfigError, match=r"worker-b.yaml: discord: .*outside 0..1"):
        load_config(shared, worker)
