# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Two workers against one: confirmed votes per second on PostgreSQL, in the same run.

`convene run` runs as real subprocesses (Slack in HTTP mode, each worker its own endpoint) on a
fresh PostgreSQL database, against the fake Slack in this process (tests/scale/cluster.py). A round
is set up (people join and contribute through forms, the ideas are released), then every voter
votes on every idea through the voting deck as fast as the answers come: each click goes to the
next worker in turn, as a round-robin load balancer sends it, and one click in ``--dup-every`` is
sent twice (to both workers with two, twice to the one with one), as a retrying proxy does. A vote
is confirmed when the next card, posted to the click's response_url, says it is recorded.

Each run measures one worker, then two, each on a database of its own. Printed per run and as
medians: confirmed votes/s, the ratio two/one (goal >= 1.6), worker CPU per click received (user +
system time of the worker processes during the votes, over the clicks they received: goal <= 1.2
ms), and the checks: votes acknowledged but not stored, or stored twice (goal 0); public posts
shown twice (goal 0); order breaks in the release per channel (goal 0).

    .venv/bin/python benchmarks/two_workers.py --database-url postgresql://postgres@127.0.0.1/test
        [--runs 5] [--voters 60] [--ideas 20] [--dup-every 20] [--worker-cpu 0.3]

``--worker-cpu F`` gives each worker process F of one core (a cgroup v1 CPU quota; needs root and
/sys/fs/cgroup/cpu), as if each ran on a host of its own, so that PostgreSQL and this process (the fake
Slack and the voters) keep the rest of the machine. Without it, on a machine of few cores, the
workers, PostgreSQL and the driver share the same cores and a second worker adds no capacity to
measure (two cores here: two workers ran at 0.94-1.04x one). With it, the ratio shows whether the
workers scale out, i.e. whether anything between them (locks, claims, the inbox) serialises them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from benchmarks.databases import fresh_database
from bot.persistence.db import make_engine
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI
from tests.scale.cluster import CHANNEL, CONVENER, Cluster

SECTORS = ["public_sector", "business", "civil_society", "resident"]
# What the next card says of the vote just cast: recorded, or (a click sent twice, whose second answer
# replaced the first) recorded already.
RECORDED = re.compile(r"Your vote on Idea (\d+) (?:is recorded|was already recorded)")
VOTE = re.compile(r"^cv:[^:]+:v:(\d+):([adp]):")
WORDS = {"a": "agree", "d": "disagree", "p": "pass"}


class Fake(FakeSlackWebAPI):
    """The fake Slack, telling the driver when a click's response_url was used (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: dict[str, asyncio.Future[None]] = {}

    def expect(self, response_url: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.answered[response_url.rsplit("/", 1)[1]] = fut
        return fut

    def _respond(self, origin: Any, call: Any) -> None:
        super()._respond(origin, call)
        fut = self.answered.pop(str(call.params.get("response_id")), None)
        if fut is not None and not fut.done():
            fut.set_result(None)


@dataclass
class Figures:
    workers: int
    votes_per_s: float = 0.0
    cpu_ms_per_click: float = 0.0
    driver_ms_per_click: float = 0.0  # this process: the fake Slack and the voters
    clicks: int = 0
    confirmed: int = 0
    lost: int = 0
    doubled: int = 0
    duplicate_posts: int = 0
    order_breaks: int = 0
    unanswered: int = 0
    notes: list[str] = field(default_factory=list)


async def click(
    cluster: Cluster, fake: Fake, k: int, uid: str, action: str, ts: str | None, dup: bool
) -> bool:
    message = fake._ephemeral.get(ts) if ts else None
    inbound = fake.payloads.block_actions(
        action, action, user_id=uid, user_name=uid.lower(), channel_id=CHANNEL,
        message_ts=ts, message=message, is_ephemeral=ts is not None,
    )  # fmt: skip
    assert inbound.response_url is not None
    answered = fake.expect(inbound.response_url)
    n = len(cluster.slacks)
    targets = [cluster.slacks[k % n], cluster.slacks[(k + 1) % n]] if dup else [cluster.slacks[k % n]]
    sent = await asyncio.gather(*(s.send(inbound) for s in targets))
    if not all(sent):
        return False
    try:
        await asyncio.wait_for(answered, 10)
    except TimeoutError:
        return False
    return True


async def voter(
    cluster: Cluster, fake: Fake, uid: str, choices: dict[int, str], turn: itertools.count[int],
    dup_every: int, acknowledged: Counter[tuple[int, str]], figures: Figures,
) -> None:  # fmt: skip
    """Open the deck from the release post, then vote on the idea each card shows until done."""
    deck = next(
        i
        for m in fake.messages(CHANNEL)
        for _l, i in slack_seen(m.get("blocks")).buttons
        if i.endswith(":deck")
    )
    k = next(turn)
    figures.clicks += 1
    if not await click(cluster, fake, k, uid, deck, None, False):
        figures.unanswered += 1
        return
    ts = str(fake.ephemerals(CHANNEL, uid)[-1]["ts"])
    told: set[int] = set()  # the ideas a card said this voter's vote on is recorded
    for _ in range(3 * len(choices) + 3):
        seen = slack_seen(fake._ephemeral[ts].get("blocks"))
        told.update(int(n) for n in RECORDED.findall(seen.text))
        buttons = {m[2]: (int(m[1]), i) for _l, i in seen.buttons if (m := VOTE.match(i))}
        if not buttons:
            break  # every idea voted on
        idea = next(iter(buttons.values()))[0]
        k = next(turn)
        dup = dup_every > 0 and k % dup_every == 0
        figures.clicks += 2 if dup else 1
        if not await click(cluster, fake, k, uid, buttons[choices[idea]][1], ts, dup):
            figures.unanswered += 1
    for n in told:
        acknowledged[(n, WORDS[choices[n]])] += 1


CGROUP_CPU = Path("/sys/fs/cgroup/cpu")


@contextlib.contextmanager
def cpu_quota(pids: list[int], fraction: float | None) -> Iterator[None]:
    """Each process in a cgroup of its own, held to ``fraction`` of one core (nothing when None)."""
    if fraction is None:
        yield
        return
    groups = []
    try:
        for pid in pids:
            group = CGROUP_CPU / f"convene_bench_{pid}"
            group.mkdir()
            groups.append(group)
            period = int((group / "cpu.cfs_period_us").read_text())
            (group / "cpu.cfs_quota_us").write_text(str(int(period * fraction)))
            (group / "cgroup.procs").write_text(str(pid))
        yield
    finally:
        for group in groups:
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):  # gone already
                    (CGROUP_CPU / "cgroup.procs").write_text(pid)
            group.rmdir()


async def one(url: str, workdir: Path, workers: int, args: argparse.Namespace, seed: int) -> Figures:
    figures = Figures(workers)
    rng = random.Random(seed)
    voters = [f"U0V{i:03d}" for i in range(args.voters)]
    engine = make_engine(url)

    async def scalar(sql: str) -> Any:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()

    async def delivered() -> None:
        while await scalar("select count(*) from outbox where status in ('pending', 'in_flight')"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async with Fake() as fake:
        cluster = Cluster(url, workdir, fake, workers, outbox={"concurrency": 32})
        try:
            await cluster.start()
            a = cluster.slacks[0]
            await a.form(CONVENER, "start", {"title": "Bench", "purpose": "Measure", "template": "standard"})
            gate = asyncio.Semaphore(8)

            async def form(i: int, uid: str, name: str, values: dict[str, str]) -> None:
                async with gate:
                    await cluster.slacks[i % workers].form(uid, name, values)

            await asyncio.gather(
                *(form(i, u, "join", {"sector": SECTORS[i % len(SECTORS)]}) for i, u in enumerate(voters))
            )
            ideas_by = voters[: args.ideas]  # idea texts never say "Idea n": the order check reads those
            await asyncio.gather(
                *(form(i, u, "contribute", {"text": f"Proposal {i}: a way"}) for i, u in enumerate(ideas_by))
            )
            await a.command(CONVENER, "next")
            while await scalar("select phase from rounds") != "vote":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await delivered()
            ideas = int(await scalar("select count(*) from ideas where status = 'released'"))
            choices = {u: {n: rng.choice("adp") for n in range(1, ideas + 1)} for u in voters}
            acknowledged: Counter[tuple[int, str]] = Counter()
            turn = itertools.count()
            pids = [w.proc.pid for w in cluster.workers if w.proc is not None]
            with cpu_quota(pids, args.worker_cpu):
                cpu = [w.cpu_seconds() for w in cluster.workers]
                started, driver = time.perf_counter(), time.process_time()
                await asyncio.gather(
                    *(
                        voter(cluster, fake, u, choices[u], turn, args.dup_every, acknowledged, figures)
                        for u in voters
                    )
                )
                seconds, driver = time.perf_counter() - started, time.process_time() - driver
                used = sum(w.cpu_seconds() - c for w, c in zip(cluster.workers, cpu, strict=True))
            figures.confirmed = sum(acknowledged.values())
            figures.votes_per_s = figures.confirmed / seconds
            figures.cpu_ms_per_click = used * 1000 / max(1, figures.clicks)
            figures.driver_ms_per_click = driver * 1000 / max(1, figures.clicks)
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("select idea_number, choice, count(*) from ballots where choice is not null"
                         " group by idea_number, choice")
                )  # fmt: skip
                stored = Counter({(int(n), str(c)): int(k) for n, c, k in rows})
            intended = Counter((n, WORDS[c]) for per in choices.values() for n, c in per.items())
            figures.lost = sum(max(0, k - stored[key]) for key, k in acknowledged.items())
            figures.doubled = sum(max(0, k - intended[key]) for key, k in stored.items())
            await delivered()
            posts = [c for c in fake.calls("chat.postMessage") if c.ok and c.get("channel") == CHANNEL]
            keys = [json.dumps(c.blocks, sort_keys=True) for c in posts]
            figures.duplicate_posts = len(keys) - len(set(keys))
            seen: list[int] = []
            for c in posts:
                for n in re.findall(r"Idea (\d+)\b", slack_seen(c.blocks).text):
                    if int(n) not in seen:
                        seen.append(int(n))
            figures.order_breaks = sum(1 for x, y in itertools.pairwise(seen) if y < x)
            if seen != list(range(1, ideas + 1)):
                figures.notes.append(f"release shown as {seen}")
        finally:
            await cluster.stop()
            await engine.dispose()
        if "Traceback" in cluster.logs():
            figures.notes.append("a worker logged a traceback")
    return figures


def line(f: Figures) -> str:
    return (
        f"  {f.workers} worker{'s' if f.workers > 1 else ' '}: {f.votes_per_s:6.0f} confirmed votes/s, "
        f"{f.cpu_ms_per_click:5.2f} ms worker CPU per click (driver {f.driver_ms_per_click:.2f}); "
        f"{f.clicks} clicks, {f.confirmed} confirmed, "
        f"{f.unanswered} unanswered); lost {f.lost}, doubled {f.doubled}, duplicate posts "
        f"{f.duplicate_posts}, order breaks {f.order_breaks}" + "".join(f"; {n}" for n in f.notes)
    )


async def main(args: argparse.Namespace) -> None:
    results: dict[int, list[Figures]] = {1: [], 2: []}
    if args.only:  # one side only (profiling): CONVENE_PROFILE=<folder> runs the workers under pyinstrument
        with tempfile.TemporaryDirectory() as tmp:
            async with fresh_database(args.database_url, Path(tmp), "only") as url:
                print(line(await one(url, Path(tmp), args.only, args, seed=0)))
        return
    for run in range(args.runs):
        print(f"run {run + 1} of {args.runs}", flush=True)
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                async with fresh_database(args.database_url, Path(tmp), f"w{workers}") as url:
                    f = await one(url, Path(tmp), workers, args, seed=run)
            results[workers].append(f)
            print(line(f), flush=True)
        ratio = results[2][-1].votes_per_s / results[1][-1].votes_per_s
        print(f"  ratio two/one: {ratio:.2f}x", flush=True)
    med = {w: statistics.median(f.votes_per_s for f in fs) for w, fs in results.items()}
    cpu = {w: statistics.median(f.cpu_ms_per_click for f in fs) for w, fs in results.items()}
    ratios = [b.votes_per_s / a.votes_per_s for a, b in zip(results[1], results[2], strict=True)]
    every = [f for fs in results.values() for f in fs]
    cap = f", each worker held to {args.worker_cpu:g} of a core" if args.worker_cpu else ""
    print(
        f"two workers vs one on PostgreSQL, {args.voters} voters x {args.ideas} ideas through the deck, "
        f"{args.runs} runs (medians){cap}, on {os.cpu_count()} cores"
    )
    print(f"  one worker : {med[1]:6.0f} confirmed votes/s, {cpu[1]:.2f} ms worker CPU per click")
    print(f"  two workers: {med[2]:6.0f} confirmed votes/s, {cpu[2]:.2f} ms worker CPU per click")
    print(f"  ratio two/one: median {statistics.median(ratios):.2f}x (runs: "
          + ", ".join(f"{r:.2f}" for r in ratios) + ") (goal >= 1.6)")  # fmt: skip
    print(
        f"  over all runs: lost {sum(f.lost for f in every)}, doubled {sum(f.doubled for f in every)}, "
        f"duplicate posts {sum(f.duplicate_posts for f in every)}, order breaks "
        f"{sum(f.order_breaks for f in every)}, unanswered clicks {sum(f.unanswered for f in every)}"
        " (goal 0 each)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", required=True, help="PostgreSQL server (a database of each run's own)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--voters", type=int, default=60)
    parser.add_argument("--ideas", type=int, default=20)
    parser.add_argument("--only", type=int, choices=[1, 2], help="measure only this many workers")
    parser.add_argument(
        "--worker-cpu", type=float, help="hold each worker to this fraction of one core (cgroup v1, root)"
    )
    parser.add_argument(
        "--dup-every", type=int, default=20, help="one click in this many sent twice (0: none)"
    )
    asyncio.run(main(parser.parse_args()))
