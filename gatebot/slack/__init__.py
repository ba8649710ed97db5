"""gatebot's Slack front end: the only package that may import ``slack_bolt`` / ``slack_sdk``.

Importing this package does nothing: no App, client or Settings is built here. The pure parts
(:mod:`gatebot.slack.ids`, :mod:`gatebot.slack.grammar`, :mod:`gatebot.slack.blocks`) need no Slack
library at all; the app factory and listeners live in their own modules and are built by the runtime.
"""
