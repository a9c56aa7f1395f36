import logging
from pathlib import Path
from tests.adapters.discord.test_discord_round import _start, _ids
from tests.adapters.discord.rig import make_rig


async def test_dbg(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="convene")
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await _start(rig)
        rec = await rig.click("alice", f"cv:{rid}:join")
        await rig.modal(rec)
        sub = await rig.submit("alice", f"cv:{rid}:form:join", {"sector": ["business"]})
        print(await rig.reply(sub))
        rec = await rig.click("alice", f"cv:{rid}:contribute")
        modal = await rig.modal(rec)
        sub = await rig.submit("alice", modal["custom_id"], {"text": "hello there"})
        print(await rig.reply(sub))
        nxt = await rig.slash("owner", "next")
        print(await rig.reply(nxt))
        await rig.wait_public(lambda m: any(":v:" in c for c in rig.buttons(m)))
        rec = await rig.click("alice", _ids(rig, "v")[0])
        print(await rec.callback())
        import asyncio

        await asyncio.sleep(2)
        print(rec.followups, [(c.method, c.path, c.status) for c in rig.fake.calls[-5:]])
        print(await rig.app.relay.drain())
        async with rig.app.engine.connect() as conn:
            from sqlalchemy import text

            print(
                (
                    await conn.execute(
                        text("select seq, visibility, status, last_error, reply_handle from outbox")
                    )
                ).all()
            )
