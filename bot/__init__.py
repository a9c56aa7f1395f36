"""convene: the platform-neutral dialogue core."""

__version__ = "0.1.0"
