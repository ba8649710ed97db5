"""Bulk orders: a campaign of hundreds of vouchers and top-ups from one CSV file (issue 14).

The API the edges call (the CLI's ``gatebot bulk``, the Slack ``/gate bulk`` surface, the bulk job):

* :meth:`BulkService.plan` — file bytes in; :class:`BulkInvalid` (every problem, by spreadsheet row and
  column; nothing saved) or a :class:`BulkPlan` (a ``planned`` batch: rows, products, totals per currency,
  balances now and after, whether it needs approval).
* :meth:`BulkService.confirm` — every row's intent committed with the batch in one transaction
  (``running``, or ``awaiting_approval``); idempotent.
* :meth:`BulkService.approve` / :meth:`BulkService.reject` — four eyes, as for an order.
* :meth:`BulkService.pause` / :meth:`BulkService.resume` / :meth:`BulkService.cancel` — the requester or
  an admin.
* :meth:`BulkService.run_batch`, :meth:`BulkService.tick`, :meth:`BulkService.resume_batches` — placing
  the rows at ``GATEBOT_BULK_RATE`` (``tick`` is the job's body, on the leader only).
* :meth:`BulkService.progress` → :class:`BatchProgress`; :meth:`BulkService.results_csv` → bytes, for
  the requester only; :meth:`BulkService.get` / :meth:`BulkService.find` a batch (``B12``);
  :meth:`BulkService.set_message` records the Slack progress message.
* Events on the core's bus: ``batch.<status>`` on every change, ``batch.progress`` (throttled) and
  ``batch.finished``; ``data`` holds ``batch_id``, ``status``, ``requester`` and, where said, ``by``,
  ``reason`` and ``progress`` (a :class:`BatchProgress`). Never a code or an account value.

A batch's rows are ordinary orders (``Order.batch_id``/``batch_row``): tracking, recovery, lookups,
``waiting_funds`` and the encryption of codes apply to them as to any order.

Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or
``gatebot.emulator``.
"""

from gatebot.bulk.base import DEFAULT_RATE, DEFAULT_RESULTS_TTL, PLANNED_TTL
from gatebot.bulk.csvfile import BASE_COLUMNS, MAX_ROWS, REQUIRED_COLUMNS, CsvFile, CsvRow, read_csv
from gatebot.bulk.lifecycle import BATCH_CANCELLED
from gatebot.bulk.model import FIRST_DATA_ROW, BatchProgress, BatchRefused, BulkInvalid, BulkPlan, Problem, ProductCount
from gatebot.bulk.placement import BULK_ACTOR, PROGRESS_EVERY
from gatebot.bulk.results import RESULT_COLUMNS
from gatebot.bulk.service import BulkService, parse_batch_ref

__all__ = [
    "BASE_COLUMNS",
    "BATCH_CANCELLED",
    "BULK_ACTOR",
    "DEFAULT_RATE",
    "DEFAULT_RESULTS_TTL",
    "FIRST_DATA_ROW",
    "MAX_ROWS",
    "PLANNED_TTL",
    "PROGRESS_EVERY",
    "REQUIRED_COLUMNS",
    "RESULT_COLUMNS",
    "BatchProgress",
    "BatchRefused",
    "BulkInvalid",
    "BulkPlan",
    "BulkService",
    "CsvFile",
    "CsvRow",
    "Problem",
    "ProductCount",
    "parse_batch_ref",
    "read_csv",
]
