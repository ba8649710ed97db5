"""Files in the emulator, both ways Slack has them.

* **The app uploads** the way ``files_upload_v2`` does it: ``files.getUploadURLExternal`` hands out an
  upload URL (``<server>/upload/<file id>``), the client POSTs the bytes there, and
  ``files.completeUploadExternal`` shares the file into a channel (a message whose text is the comment).
* **A person uploads** through a modal's ``file_input`` (:meth:`Files.upload_file`, then the driver's
  ``set_input`` with the file): the view's ``state.values`` carries Slack's file object, whose
  ``url_private_download`` (``<server>/files-pri/<team>-<file id>/download/<name>``) serves the bytes only
  with the bot token as ``Authorization: Bearer``. Without it Slack answers HTTP 200 with its HTML sign-in
  page, not an error — so does the emulator.

Tests read :attr:`Workspace.files <gatebot.emulator.workspace.Workspace.files>` to see what was uploaded and
where it was shared. Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SIGN_IN_PAGE", "UploadedFile"]

#: What Slack serves a ``url_private`` fetched without the bot token (HTTP 200, ``text/html``).
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"

_MIMETYPES = {"csv": "text/csv", "text": "text/plain", "pdf": "application/pdf", "png": "image/png"}


@dataclass(slots=True, eq=False)
class UploadedFile:
    """One file: announced (``content`` still ``None``), uploaded, then shared (``shares``: channel, ts).
    ``user`` is who uploaded it (``None``: the app)."""

    id: str
    filename: str
    length: int
    title: str | None = None
    content: bytes | None = None
    shares: list[tuple[str, str]] = field(default_factory=list)
    user: str | None = None
    filetype: str = "text"
    created: int = 0

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8")

    @property
    def mimetype(self) -> str:
        return _MIMETYPES.get(self.filetype, "application/octet-stream")

    def download_path(self, team_id: str) -> str:
        return f"/files-pri/{team_id}-{self.id}/download/{self.filename}"

    def to_dict(self, base_url: str, team_id: str) -> dict[str, Any]:
        """Slack's file object (as ``file_input`` state and ``files.info`` show it)."""
        base = base_url.rstrip("/")
        return {
            "id": self.id, "created": self.created, "timestamp": self.created, "name": self.filename,
            "title": self.title or self.filename, "mimetype": self.mimetype, "filetype": self.filetype,
            "pretty_type": self.filetype.upper(), "user": self.user or "", "user_team": team_id,
            "editable": False, "size": len(self.content or b""), "mode": "hosted", "is_external": False,
            "external_type": "", "is_public": False, "public_url_shared": False, "display_as_bot": False,
            "username": "",
            "url_private": f"{base}/files-pri/{team_id}-{self.id}/{self.filename}",
            "url_private_download": f"{base}{self.download_path(team_id)}",
            "permalink": f"{base}/files/{self.user or ''}/{self.id}/{self.filename}",
            "is_starred": False, "has_rich_preview": False, "file_access": "visible",
        }
