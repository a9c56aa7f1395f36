"""Every error the adapters tell people directly (not through a DomainError, which the meta test
covers) has its template in prompts/<lang>/errors/, and renders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.prompts import PromptKey, Prompts

ROOT = Path(__file__).resolve().parents[2]
# say(interaction, "code"), say_privately(ctx, "code"), tell(body, "code"), error_text("code"),
# keep_open("code"), refuse(ctx, "code"), _refuse(interaction, "code", ...)
TOLD = re.compile(r'\b(?:say|say_privately|tell|error_text|keep_open|refuse|_refuse)\([^()"]*"([a-z_]+)"')


def told_codes() -> set[str]:
    return {code for path in (ROOT / "adapters").rglob("*.py") for code in TOLD.findall(path.read_text())}


def test_the_adapters_tell_people_of_several_errors() -> None:
    assert {"malformed_request", "form_unreadable", "form_not_opened", "internal_error"} <= told_codes()


@pytest.mark.parametrize("code", sorted(told_codes()))
def test_every_error_told_directly_has_a_template(code: str) -> None:
    assert (ROOT / "prompts" / "en" / "errors" / f"{code}.j2").is_file()
    text = Prompts().render(PromptKey.ERROR, {"code": code}).strip()
    assert text
    assert "{" not in text
