"""Platform adapters: translate payloads into core commands and render core messages back."""
