"""Slack adapter: a slack-bolt AsyncApp (Socket Mode or HTTP) in front of the core, and a ChatPort.

* `port.SlackChatPort`: what the outbox relay delivers through (Block Kit, ephemerals, DMs).
* `app.create_bolt_app`: the bolt app (`/convene`, `cv:` buttons and modals, DM refusals).
* `runner.run_slack` / `runner.make_port`: what `convene run` calls.
"""
