"""Every text the bot shows lives in ``prompts/<lang>/``; this module renders it.

Templates are Jinja2 with StrictUndefined. Every ``{{ value }}`` passes through the target
platform's escape function (``finalize``), so user text can never become markup or a mention.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.messages import Block, Button, Message, Rendered

if TYPE_CHECKING:
    import jinja2

Escape = Callable[[str], str]


def no_escape(text: str) -> str:
    return text


class PromptKey(StrEnum):
    ROUND_CARD = "round/card"
    ROUND_STARTED = "round/started"
    ROUND_LINKED = "round/linked"
    ROUND_CANCELLED = "round/cancelled"
    PHASE_CHANGED = "round/phase_changed"
    CHARTER = "join/charter"
    JOINED = "join/joined"
    CONTRIBUTE_INTRO = "contribute/intro"
    CONTRIBUTION_RECORDED = "contribute/recorded"
    CONTRIBUTIONS_MINE = "contribute/mine"
    CONTRIBUTION_WITHDRAWN = "contribute/withdrawn"
    RELEASE_HEADER = "vote/release_header"
    RELEASE_IDEA = "vote/release_idea"
    RELEASE_LIST = "vote/release_list"
    DECK_CARD = "vote/deck_card"
    DECK_NOTICE = "vote/deck_notice"
    DECK_DONE = "vote/deck_done"
    DECK_CLOSED = "vote/deck_closed"
    BALLOT_RECORDED = "vote/recorded"
    RATING_RECORDED = "vote/rated"
    RATE_INTRO = "vote/rate_intro"
    RESULTS_HEADER = "goals/results_header"
    RESULTS_LIST = "goals/results_list"
    CHART = "goals/chart"
    GOALS_OPEN = "goals/open"
    GOAL_INTRO = "goals/intro"
    GOAL_CARD = "goals/card"
    GOAL_RECORDED = "goals/recorded"
    ACTIONS_OPEN = "actions/open"
    ACTION_INTRO = "actions/intro"
    ACTION_CARD = "actions/card"
    ACTION_RECORDED = "actions/recorded"
    ACTION_TAKEN = "actions/taken"
    SUMMARY = "close/summary"
    START_INTRO = "round/start_intro"
    STATUS = "help/status"
    HELP = "help/help"
    ERROR = "errors/error"
    # outages (a channel whose posts keep failing) and nudges (voters reminded, nobody named)
    STALL_NOTICE = "round/stall_notice"
    REPOSTED = "round/reposted"
    NUDGE = "vote/nudge"
    NUDGED = "vote/nudged"
    # follow-up: tracked goals, resourced actions, reminders, check-ins, pilots, Delphi, recap
    GOAL_EDIT_INTRO = "goals/edit_intro"
    GOAL_UPDATED = "goals/updated"
    ACTION_EDIT_INTRO = "actions/edit_intro"
    ACTION_UPDATED = "actions/updated"
    ACTIONS_LIST = "actions/list"
    REMINDER = "followup/reminder"
    ESCALATION = "followup/escalation"
    STATUS_SET = "followup/status_set"
    PROGRESS_INTRO = "followup/progress_intro"
    REMINDERS_SET = "followup/reminders_set"
    TIMEZONE_SET = "followup/timezone_set"
    CHECKIN_ASK = "followup/checkin_ask"
    CHECKIN_INTRO = "followup/checkin_intro"
    CHECKIN_RECORDED = "followup/checkin_recorded"
    PILOT_ASK = "followup/pilot_ask"
    PILOT_INTRO = "followup/pilot_intro"
    PILOT_DECIDED = "followup/pilot_decided"
    PILOT_RECORDED = "followup/pilot_recorded"
    PROGRESS_POST = "followup/progress"
    RECAP = "followup/recap"
    DELPHI_CARD = "delphi/card"
    DELPHI_STARTED = "delphi/started"
    ESTIMATE_INTRO = "delphi/estimate_intro"
    ESTIMATE_RECORDED = "delphi/recorded"
    FIX_INTRO = "delphi/fix_intro"
    TARGET_FIXED = "delphi/fixed"
    # moderation without unmasking
    REVIEW_LIST = "moderation/review_list"
    REVIEW_IDEA = "moderation/review_idea"
    REJECT_INTRO = "moderation/reject_intro"
    IDEA_APPROVED = "moderation/approved"
    IDEA_REJECTED = "moderation/rejected"
    IDEA_REJECTED_NOTICE = "moderation/rejected_notice"
    IDEA_REMOVED = "moderation/removed"
    AUTHOR_BLOCKED = "moderation/blocked"


def default_prompts_dir() -> Path:
    """prompts/ beside the packages in a checkout, or the copy inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "prompts", here / "_prompts"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no prompts directory found (expected prompts/ beside bot/)")


class Prompts:
    """Renders prompt keys and labels for one language."""

    def __init__(self, root: Path | None = None, language: str = "en") -> None:
        self.root = root or default_prompts_dir()
        self.language = language
        self.dir = self.root / language
        if not self.dir.is_dir():
            raise FileNotFoundError(f"no prompts for language {language!r} in {self.root}")
        with (self.dir / "labels.yaml").open(encoding="utf-8") as fh:
            self.labels: dict[str, Any] = yaml.safe_load(fh)
        self._loader: jinja2.BaseLoader | None = None  # Jinja2 from the first text rendered (~3 MiB)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one environment per escape function, for the process
    def _env(self, escape: Escape) -> jinja2.Environment:
        import jinja2

        if self._loader is None:
            self._loader = jinja2.FileSystemLoader(str(self.dir))

        def finalize(value: Any) -> Any:
            # Numbers are the template's own; anything else may carry a person's text, even inside
            # a list or a mapping rendered whole.
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            return escape(str(value))

        env = jinja2.Environment(
            loader=self._loader,
            undefined=jinja2.StrictUndefined,
            finalize=finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
            auto_reload=False,  # compiled once per process: no stat of the file at every render
        )
        env.globals["labels"] = self.label
        return env

    def label(self, group: str, key: str) -> str:
        section = self.labels.get(group, {})
        value = section.get(str(key)) if isinstance(section, dict) else None
        if isinstance(value, str):
            return value
        # An unknown configured sector or template still shows something readable.
        return str(key).replace("_", " ")

    def render(self, key: str, params: Mapping[str, Any], escape: Escape = no_escape) -> str:
        template = self._env(escape).get_template(f"{key}.j2")
        return template.render(**params).strip()

    def button_label(self, key: str, params: Mapping[str, Any] | None = None) -> str:
        """A button's label; ``params`` fill its ``{name}`` places ("Make Idea {label} a goal")."""
        label = self.label("buttons", key)
        return label.format_map(dict(params)) if params else label

    def render_message(self, message: Message, escape: Escape = no_escape) -> Rendered:
        blocks = []
        for part in message.parts:
            text = self.render(part.prompt, part.params, escape)
            buttons = tuple(
                Button(b.action, self.button_label(b.label, b.params), b.style) for b in part.buttons
            )
            blocks.append(Block(text, buttons))
        return Rendered(tuple(blocks))
