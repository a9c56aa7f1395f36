"""Discord adapter (discord.py): `/convene` commands, buttons and modals for the neutral core."""

from .client import ConveneClient, intents
from .port import DiscordChatPort
from .runner import make_client, make_port, run_discord, sync_commands

__all__ = [
    "ConveneClient",
    "DiscordChatPort",
    "intents",
    "make_client",
    "make_port",
    "run_discord",
    "sync_commands",
]
