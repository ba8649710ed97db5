"""Scenario tests: the whole Slack app over loopback HTTP against the Slack emulator and the Gate sandbox."""
