"""Finance services of the core, one concern per module:

* :mod:`.balance_check` — read the balances, feed the low-balance alerts;
* :mod:`.readings` — the latest balance of each currency;
* :mod:`.spend` — spend and deposits over a window;
* :mod:`.deposits` — the deposit watch (record, announce, resume waiting orders);
* :mod:`.digest` — the daily digest and its stored periods;
* :mod:`.exports` — the CSV exports.

Must not import Slack, the scheduler or ``gatebot.jobs``.
"""
