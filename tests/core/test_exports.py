"""What a round leaves behind: exports (json, csv, md, Polis) and the engine on small rounds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.consensus.polis import load_polis_export
from bot.reports import export_polis, find_round, render_report_md, report_csv, round_report
from tests.core import story
from tests.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
POLIS = ROOT.parent / "shared" / "data" / "polis" / "london.youth.policing"


async def closed_vote(h: Harness) -> str:
    rid = await story.to_vote(h)
    for n, (name, _p, _s) in enumerate(story.PEOPLE):
        for idea in range(1, 5):
            await story.vote(h, name, idea, "Agree" if (n + idea) % 3 else "Disagree")
    await h.driver.command(h.person("maya"), "next")
    return rid


async def test_polis_export_round_trips_with_opaque_voters(harness: Harness, tmp_path: Path) -> None:
    rid = await closed_vote(harness)
    await export_polis(harness.app.sessions, rid, tmp_path)
    conv = load_polis_export(tmp_path)
    assert conv.table.n_participants == len(story.PEOPLE)
    assert conv.table.n_ideas == 4
    assert len(conv.table.value) == len(story.PEOPLE) * 4
    assert sorted(conv.participant_ids, key=int) == [str(i) for i in range(len(story.PEOPLE))]
    exported = "".join(p.read_text() for p in tmp_path.glob("*.csv"))
    for secret in ("U-", "slack", "resident"):
        assert secret not in exported


async def test_reports_in_every_format_carry_no_attribution(harness: Harness) -> None:
    rid = await closed_vote(harness)
    assert await find_round(harness.app.sessions, rid[:8]) == rid
    report = await round_report(harness.app.sessions, rid)
    assert [i["rank"] for i in report["ideas"]] == [1, 2, 3, 4]
    for text in (json.dumps(report), render_report_md(report), report_csv(report, "ideas")):
        assert "U-" not in text
        assert "public_sector" not in text


async def test_a_round_with_one_voter_still_ranks_without_error(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    await story.vote(h, "raj", 2, "Agree")
    await h.driver.command(h.person("maya"), "next")
    results = h.public_text()
    assert "voting has closed" in results
    assert "1 agree, 0 disagree" in results
    assert "Traceback" not in results


@pytest.mark.skipif(not POLIS.exists(), reason="shared Polis data not present")
def test_analyze_prints_the_documented_json() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "analyze", str(POLIS), "--json", "--seed", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert set(data) == {
        "participants",
        "statements",
        "k",
        "groups",
        "consensus",
        "representative",
        "seconds",
    }
    assert data["participants"] == 26
    gacs = [c["gac"] for c in data["consensus"]]
    assert all(0 < g <= 1 for g in gacs)


def test_analyze_refuses_a_folder_that_is_not_an_export(tmp_path: Path) -> None:
    (tmp_path / "comments.csv").write_text("nonsense\n")
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "analyze", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "comments.csv" in run.stderr


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


async def test_export_command_writes_every_format(harness: Harness, tmp_path: Path) -> None:
    if harness.app.engine.dialect.name != "sqlite":
        pytest.skip("the command-line check runs once, on the SQLite file")
    rid = await closed_vote(harness)
    config = tmp_path / "c.yaml"
    config.write_text(f"database:\n  url: {harness.app.engine.url.render_as_string(hide_password=False)}\n")
    for fmt, out in (("json", "r.json"), ("md", "r.md"), ("csv", "csv"), ("polis", "polis")):
        target = str(tmp_path / out)
        run = await asyncio.to_thread(
            cli, "export", rid[:10], "--format", fmt, "--out", target, "--config", str(config)
        )
        assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "r.json").read_text())["round"]["id"] == rid
    assert (tmp_path / "csv" / "ideas.csv").read_text().startswith("id,label,text")
    assert (tmp_path / "polis" / "participants-votes.csv").exists()
    bad = await asyncio.to_thread(cli, "export", "nope", "--config", str(config))
    assert bad.returncode == 2
    assert "no round with that id" in bad.stderr
