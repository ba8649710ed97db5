"""Tests of the Slack layer (pure parts: grammar, builders, manifest)."""
