"""A local, terminal adapter: try convene or rehearse a round with no Slack or Discord account."""
