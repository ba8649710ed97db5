"""Finance services of the core: the CSV exports (:mod:`gatebot.finance.exports`). Must not import Slack or the
scheduler."""
