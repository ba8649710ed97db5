"""Tests of the scheduled jobs, the monitor (alert persistence), the alert poster and the alert buttons."""
