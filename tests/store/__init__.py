"""Tests of the order store (gatebot/store/); every database test runs on SQLite and PostgreSQL."""
