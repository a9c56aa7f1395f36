"""The registry of capabilities: every command is declared once, with every route that leads to it.

A capability module (``bot/service/handlers/*.py``) makes one :class:`Capability` and registers each
command with its rule (the phases it runs in, who may ask) and the routes to it: a text subcommand,
a button verb, a form, a timer kind. Adapters, ``textcmd``, the help text and the meta tests read
the registry; none of them keeps a list of verbs. The bus applies the declared rule (see
``bot/domain/rules.py``) wherever the command comes from, and when its form opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

from bot.domain.commands import Context
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.forms import FormField

# Handlers, guards and reactions take a ``bot.service.unit.Unit`` first; it is not named here so
# that the registry depends on nothing of the service (the unit's services hold the registry).
Handler = Callable[[Any, Any], Awaitable[None]]
# A batch handler may return one answer per command (the deck's next card), in the commands' order.
BatchHandler = Callable[[Any, list[Any]], Awaitable[list[Any] | None]]
Reaction = Callable[[Any, Any], Awaitable[None]]
Guard = Callable[[Any], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Arg:
    """The one argument a text subcommand takes (a Discord option; described by
    ``labels.yaml`` ``commands.option_<name>``)."""

    name: str
    kind: Literal["str", "int"]
    required: bool


@dataclass(frozen=True, slots=True)
class Text:
    """``/convene <name> [arg]``. Without ``build`` the subcommand opens the command's form, with the
    argument (if any) as the form's argument. ``refuse_typed`` names the refusal for text typed after
    a subcommand that must not take any (an idea typed in a shared channel)."""

    name: str
    arg: Arg | None = None
    build: Callable[[Context, str], Any] | None = None
    refuse_typed: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """A button verb (``cv:<round>:<verb>:<args>``) taking exactly ``arity`` arguments. Without
    ``build`` it opens the command's form with its first argument as the form's argument. With
    ``card`` the click is answered by a private card (``bot.messages.Card``) that its batched
    handler returns: ``"new"`` shows it as a new private message (a button on a public post),
    ``"replace"`` in place of the card that was clicked."""

    verb: str
    arity: int = 0
    build: Callable[[Context, str, tuple[str, ...]], Any] | None = None
    card: Literal["new", "replace"] | None = None


@dataclass(frozen=True, slots=True)
class FormInput:
    """What a form's parser sees: the raw values and what validation depends on."""

    ctx: Context
    round_id: str | None
    arg: str | None
    values: Mapping[str, str]
    today: Any  # datetime.date
    settings: Mapping[str, Any]  # the round's settings ({} for forms outside a round transaction)
    templates: Collection[str]


@dataclass(frozen=True, slots=True)
class FormDef:
    """A form: ``fields`` builds what is shown (fields and intro) once the rule allowed it; ``parse``
    turns the submitted values into the typed command (raising FormErrors) before a handler sees it."""

    name: str
    fields: Callable[[Any, str | None], Awaitable[tuple[tuple[FormField, ...], str]]]
    parse: Callable[[FormInput], Any]


class DueTimer(NamedTuple):
    """A timer the scheduler claimed (its row is already marked done in the firing's transaction):
    the columns a firing reads, not the ORM row, so a pass after downtime builds no ORM objects."""

    id: str
    round_id: str | None
    kind: str
    phase: str
    subject: str | None
    due_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Timer:
    kind: str
    build: Callable[[DueTimer], Any]


@dataclass(frozen=True, slots=True)
class Route:
    """One command and everything that leads to it."""

    command: type[Any]
    capability: str
    handler: Handler | None = None
    batch: BatchHandler | None = None  # committed in batches with others (group commit)
    phases: frozenset[Phase] | None = None  # None: any phase
    who: Who = Who.ANYONE
    in_round: bool = True  # acts on a round: the button's or form's round, else the one linked here
    # (unit, round id or None) -> the round, in place of "linked here": follow-up acts on closed
    # rounds and from DMs, which no round is linked to
    locate: Callable[[Any, str | None], Awaitable[Any]] | None = None
    guard: Guard | None = None  # a further rule, checked when the form opens and when it is submitted
    prepare: Callable[[Any, Any], Awaitable[Any]] | None = None  # (bus, command) before the transaction
    text: Text | None = None
    button: Button | None = None
    form: FormDef | None = None
    timer: Timer | None = None


@dataclass(frozen=True, slots=True)
class ReactionSpec:
    event: type[Any]
    match: Mapping[str, Any]
    run: Reaction
    capability: str

    def matches(self, event: Any) -> bool:
        for name, wanted in self.match.items():
            value = getattr(event, name)
            if isinstance(wanted, tuple | frozenset | set):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
        return True


@dataclass
class Capability:
    """One room of the service: its commands and reactions, registered where they are defined."""

    name: str
    routes: list[Route] = field(default_factory=list)
    reactions: list[ReactionSpec] = field(default_factory=list)

    def command(
        self,
        command: type[Any],
        *,
        phases: Iterable[Phase] | None = None,
        who: Who = Who.ANYONE,
        in_round: bool = True,
        locate: Callable[[Any, str | None], Awaitable[Any]] | None = None,
        guard: Guard | None = None,
        prepare: Callable[[Any, Any], Awaitable[Any]] | None = None,
        text: Text | None = None,
        button: Button | None = None,
        form: FormDef | None = None,
        timer: Timer | None = None,
        batched: bool = False,
    ) -> Callable[[F], F]:
        """Register ``handler`` for ``command``. ``batched``: the handler takes a list of commands
        committed together (group commit) and applies the declared rule per command itself, so that
        one refusal never fails the others."""

        def register(handler: F) -> F:
            self.routes.append(
                Route(
                    command,
                    self.name,
                    handler=None if batched else handler,
                    batch=handler if batched else None,
                    phases=frozenset(phases) if phases is not None else None,
                    who=who,
                    in_round=in_round,
                    locate=locate,
                    guard=guard,
                    prepare=prepare,
                    text=text,
                    button=button,
                    form=form,
                    timer=timer,
                )
            )
            return handler

        return register

    def on(self, event: type[Any], **match: Any) -> Callable[[F], F]:
        """React to ``event`` (in the same transaction) when its attributes equal ``match``."""

        def register(reaction: F) -> F:
            self.reactions.append(ReactionSpec(event, match, reaction, self.name))
            return reaction

        return register


class Registry:
    """Every capability's routes, looked up by command type, text name, button verb, form or timer."""

    def __init__(self, capabilities: Iterable[Capability]) -> None:
        self.capabilities = tuple(capabilities)
        self.routes = tuple(r for cap in self.capabilities for r in cap.routes)
        self.reactions = tuple(x for cap in self.capabilities for x in cap.reactions)
        self._by_command = _unique({r.command: r for r in self.routes}, len(self.routes), "command")
        texts = [r for r in self.routes if r.text]
        self._by_text = _unique({r.text.name: r for r in texts if r.text}, len(texts), "text subcommand")
        buttons = [r for r in self.routes if r.button]
        self._by_verb = _unique({r.button.verb: r for r in buttons if r.button}, len(buttons), "button")
        forms = [r for r in self.routes if r.form]
        self._by_form = _unique({r.form.name: r for r in forms if r.form}, len(forms), "form")
        timers = [r for r in self.routes if r.timer]
        self._by_timer = _unique({r.timer.kind: r for r in timers if r.timer}, len(timers), "timer")

    def route(self, command: type[Any]) -> Route:
        return self._by_command[command]

    def text(self, name: str) -> Route | None:
        return self._by_text.get(name)

    def verb(self, verb: str) -> Route | None:
        return self._by_verb.get(verb)

    def form(self, name: str) -> Route | None:
        return self._by_form.get(name)

    def timer(self, kind: str) -> Route | None:
        return self._by_timer.get(kind)

    def subcommands(self) -> list[Route]:
        """Routes with a text subcommand, in registration order (help, Discord's command group)."""
        return [r for r in self.routes if r.text]

    def text_opens_form(self, name: str) -> bool:
        route = self.text(name)
        return bool(route and route.text and route.text.build is None and route.form)

    def verb_opens_form(self, verb: str) -> bool:
        route = self.verb(verb)
        return bool(route and route.button and route.button.build is None and route.form)

    def verb_answers_card(self, verb: str) -> bool:
        """A click whose answer is a private card (adapters answer it through the click itself)."""
        route = self.verb(verb)
        return bool(route and route.button and route.button.card)

    def reactions_to(self, event: Any) -> list[ReactionSpec]:
        return [x for x in self.reactions if isinstance(event, x.event) and x.matches(event)]


def _unique(table: dict[Any, Route], expected: int, what: str) -> dict[Any, Route]:
    if len(table) != expected:
        raise ValueError(f"a {what} is registered twice")
    return table
