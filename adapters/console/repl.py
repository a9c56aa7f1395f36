"""`convene console`: type what conveners and participants type in Slack and Discord, as several
people on two simulated platforms linked to one round."""

from __future__ import annotations

import asyncio
import shlex

from bot.app import build_app
from bot.config import AppConfig
from bot.forms import Form
from bot.prompts import Prompts

from .driver import ConsoleDriver, Person
from .port import Shown, format_shown


async def _ask(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


async def fill_form(form: Form) -> dict[str, str] | None:
    print(f"\n== {form.title} ==\n{form.intro}")
    values: dict[str, str] = {}
    for field in form.fields:
        hint = ""
        if field.options:
            hint = " (" + ", ".join(f"{o.value}" for o in field.options) + ")"
        default = f" [{field.initial}]" if field.initial else ""
        answer = await _ask(f"{field.label}{hint}{default}: ")
        if answer is None:
            return None
        values[field.name] = answer or field.initial
    return values


async def run_console(config: AppConfig) -> int:
    prompts = Prompts(None, config.language)
    print(prompts.render("cli/console_intro", {"conveners": config.console.conveners}))
    ports = ConsoleDriver.make_ports(lambda item: print(format_shown(item)))
    app = await build_app(config, dict(ports))
    driver = ConsoleDriver(app, ports, list(config.console.conveners))
    me: Person | None = None
    try:
        while True:
            line = await _ask(f"{me.name if me else '?'}@{me.platform if me else '-'}> ")
            if line is None or line.strip() in ("quit", "exit"):
                return 0
            words = shlex.split(line) if line.strip() else []
            if not words:
                continue
            if words[0] == "as" and len(words) >= 2:
                try:
                    me = driver.person(words[1], words[2] if len(words) > 2 else None)
                except ValueError as err:
                    print(err)
                continue
            if words[0] == "help":
                print(prompts.render("cli/console_intro", {"conveners": config.console.conveners}))
                continue
            if me is None:
                print(prompts.render("cli/console_who", {}))
                continue
            form: Form | None = None
            if words[0] == "/convene":
                form = await driver.command(me, line.strip()[len("/convene") :])
            elif words[0] == "buttons":
                for n, b in enumerate(driver.buttons_seen_by(me), start=1):
                    print(f"  {n}. [{b.label}]")
                continue
            elif words[0] == "press" and len(words) == 2 and words[1].isdigit():
                seen = driver.buttons_seen_by(me)
                index = int(words[1]) - 1
                if not 0 <= index < len(seen):
                    print(prompts.render("cli/console_no_button", {}))
                    continue
                form = await driver.press(me, seen[index])
            else:
                print(prompts.render("cli/console_unknown", {}))
                continue
            if form is not None:
                values = await fill_form(form)
                if values is not None:
                    await driver.submit(me, form, values)
    finally:
        await app.aclose()


__all__ = ["Shown", "run_console"]
