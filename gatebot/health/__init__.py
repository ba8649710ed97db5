"""gatebot's own health: is the Gate API up (probe, real calls, the circuit) and are the jobs on time.

* :mod:`.circuit` — "is the Gate down?", for callers outside a unit of work;
* :mod:`.calls` — :class:`~.calls.CallRecorder`, the Gate client's hook that remembers real calls;
* :mod:`.probe` — the health check: real calls and a ``/health`` probe fed to the health policy;
* :mod:`.job_runs` — each job's run record and whether it is on time (``/healthz``);
* :mod:`.selfwatch` — the self-watch: a job that stopped succeeding raises its own alert.

Must not import Slack, the scheduler, ``gatebot.jobs`` or httpx (the Gate client is passed in).
"""
