"""Several `convene run` workers on one database, as a deployment behind a load balancer runs them:
real subprocesses (Slack in HTTP mode, each on its own port) against the fake Slack in this process.
Shared by tests/scale/test_two_workers.py and benchmarks/two_workers.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from benchmarks.crash_restart import Slack, retry
from tests.platform_fakes.slack import FakeSlackWebAPI

ROOT = Path(__file__).resolve().parents[2]
PATH = "/slack/events"
CHANNEL = "C0GENERAL"
CONVENER = "U0MAYA"
PROBE = "U0PROBE"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    """One `convene run` process."""

    def __init__(self, name: str, config: Path, env: dict[str, str], log: Path, port: int) -> None:
        self.name = name
        self.config = config
        self.env = env
        self.log = log
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> None:
        # CONVENE_PROFILE=<folder>: each worker runs under pyinstrument and writes its profile there
        # when stopped (benchmarks only; pyinstrument is not a dependency).
        # CONVENE_PROFILER=cprofile: cProfile instead (CPU time, per function; read with pstats).
        profile = os.environ.get("CONVENE_PROFILE")
        wrap = ["-m", "pyinstrument", "-r", "text", "-o", f"{profile}/{self.name}.txt"] if profile else []
        if profile and os.environ.get("CONVENE_PROFILER") == "cprofile":
            wrap = ["-m", "cProfile", "-o", f"{profile}/{self.name}.prof"]
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *wrap, "-m", "adapters.cli", "run", "--config", str(self.config),
                cwd=ROOT, env=self.env, stdout=log, stderr=log,
            )  # fmt: skip

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT if os.environ.get("CONVENE_PROFILE") else signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (Linux /proc)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """``n`` workers on ``url``, sharing the round keys (one key directory and KEK, as hosts sharing
    a volume and a secret would) and answering the fake Slack; each worker is one Slack endpoint."""

    def __init__(self, url: str, workdir: Path, fake: FakeSlackWebAPI, n: int, **config: Any) -> None:
        self.fake = fake
        kek = base64.b64encode(os.urandom(32)).decode()
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": fake.signing_secret,
            "CONVENE_KEK": kek,
        }
        self.workers: list[Worker] = []
        for i in range(n):
            port = free_port()
            data: dict[str, Any] = {
                "database": {"url": url},
                "anonymity": {"key_dir": str(workdir / "keys")},
                "rounds": {"sector_min_voters": 2},
                "slack": {
                    "enabled": True,
                    "mode": "http",
                    "http": {"host": "127.0.0.1", "port": port, "path": PATH},
                    "api_base_url": fake.base_url + "/",
                    "conveners": {"user_ids": [CONVENER]},
                },
            }
            for key, value in config.items():
                data.setdefault(key, {}).update(value)
            path = workdir / f"worker-{i}.yaml"
            path.write_text(yaml.safe_dump(data))
            self.workers.append(Worker(f"worker-{i}", path, env, workdir / f"worker-{i}.log", port))
        self.slacks = [Slack(fake, w.url) for w in self.workers]

    async def start(self) -> None:
        """Every worker at once; returns when each answers a signed request."""
        await asyncio.gather(*(w.start() for w in self.workers))
        await asyncio.gather(*(self.answering(s, w) for s, w in zip(self.slacks, self.workers, strict=True)))

    async def answering(self, slack: Slack, worker: Worker) -> None:
        async def ok() -> bool | None:
            if worker.proc is not None and worker.proc.returncode is not None:
                raise RuntimeError(
                    f"{worker.name} exited ({worker.proc.returncode}):\n{worker.log_text()[-3000:]}"
                )
            inbound = self.fake.payloads.slash_command(text="help", user_id=PROBE, channel_id=CHANNEL)
            return True if await slack.send(inbound) else None

        await retry(ok, timeout=60, pause=0.1)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
        for s in self.slacks:
            with contextlib.suppress(Exception):
                await s.sim.close()

    def logs(self) -> str:
        return "\n".join(w.log_text() for w in self.workers)
