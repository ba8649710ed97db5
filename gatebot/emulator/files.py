"""Files uploaded to the emulator the way ``files_upload_v2`` does it: ``files.getUploadURLExternal`` hands out
an upload URL (``<server>/upload/<file id>``), the client POSTs the bytes there, and
``files.completeUploadExternal`` shares the file into a channel (a message whose text is the comment).

Tests read :attr:`Workspace.files <gatebot.emulator.workspace.Workspace.files>` to see what was uploaded and
where it was shared. Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["UploadedFile"]


@dataclass(slots=True, eq=False)
class UploadedFile:
    """One file: announced (``content`` still ``None``), uploaded, then shared (``shares``: channel, ts)."""

    id: str
    filename: str
    length: int
    title: str | None = None
    content: bytes | None = None
    shares: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8")
