"""Tests of ``gatebot demo``: renderer, forms, the session on a running demo, scripts and the CLI."""
