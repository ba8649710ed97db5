"""gatebot: a Slack chat-ops bot for the Plexy Gate API.

Nothing happens at import time: settings, engines, clients and apps are built in ``runtime.py``.
"""

__version__ = "0.1.0"
