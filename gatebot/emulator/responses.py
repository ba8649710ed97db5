r"""``response_url``\ s: issued by the driver with an interaction, posted to by the app (an ephemeral reply,
an ``in_channel`` message, or a replacement or deletion of the original), within Slack's limits.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from gatebot.emulator.blockkit import assign_ids
from gatebot.emulator.conversations import Conversations
from gatebot.emulator.model import JSON, ApiError, Change, ChangeKind, Ephemeral, Message, ResponseUrl, Revision

#: ``response_url`` limits: posts per URL and lifetime.
RESPONSE_URL_MAX_POSTS = 5
RESPONSE_URL_TTL = timedelta(minutes=30)


class ResponseUrls(Conversations):
    """What the app may do with a ``response_url`` (``invalid_url``, ``expired_url``, ``used_url``)."""

    def issue_response_url(
        self, base_url: str, *, user: str, channel: str, original: Message | Ephemeral | None = None
    ) -> str:
        """A ``response_url`` under ``base_url`` (the emulator server) for an interaction in ``channel``."""
        with self._lock:
            self._counters["response_url"] += 1
            n = self._counters["response_url"]
            token = f"{n:08d}{hashlib.sha256(f'{self.team_id}:r{n}'.encode()).hexdigest()[:16]}"
            cid = self.channel(channel).id
            self._response_urls[token] = ResponseUrl(token, user, cid, self.clock.now(), original)
            return f"{base_url.rstrip('/')}/response/{token}"

    def response_url(self, token: str) -> ResponseUrl | None:
        with self._lock:
            return self._response_urls.get(token)

    def bind_response_url(self, url: str, original: Message | Ephemeral) -> None:
        """Make ``original`` the message a later ``replace_original``/``delete_original`` acts on."""
        with self._lock:
            target = self._response_urls.get(url.rstrip("/").rsplit("/", 1)[-1])
            if target is not None:
                target.original = original

    def respond(self, token: str, body: JSON) -> Message | Ephemeral | None:
        """A post to a ``response_url``: an ephemeral by default, a channel message for
        ``response_type: in_channel``, or a replacement/deletion of the original."""
        with self._mutating() as changes:
            target = self._response_urls.get(token)
            if target is None:
                raise ApiError("invalid_url")
            if self.clock.now() - target.issued_at > RESPONSE_URL_TTL:
                raise ApiError("expired_url")
            if target.posts >= RESPONSE_URL_MAX_POSTS:
                raise ApiError("used_url")
            text = body.get("text")
            blocks = body.get("blocks")
            if blocks is not None and not isinstance(blocks, list):
                raise ApiError("invalid_blocks")
            original = target.original
            if body.get("delete_original") and original is not None:
                target.posts += 1
                original.deleted = True
                kind: ChangeKind = "message.deleted" if isinstance(original, Message) else "ephemeral.deleted"
                changes.append(self._change_for(kind, original))
                return None
            if body.get("replace_original") and original is not None and not original.deleted:
                if isinstance(original, Message):
                    self._edit(original, text=text or "", blocks=blocks if blocks is not None else [])
                    changes.append(self._change_for("message.updated", original))
                else:
                    self._check_content(text, blocks, None)
                    original.revisions.append(Revision(original.text, original.blocks, self._next_ts()))
                    original.text = text or ""
                    original.blocks = (
                        assign_ids(blocks, f"{original.ts}:r{len(original.revisions)}") if blocks else None
                    )
                    changes.append(self._change_for("ephemeral.updated", original))
                target.posts += 1
                return original
            ch = self.channel(target.channel)
            thread_ts = body.get("thread_ts")
            result: Message | Ephemeral
            if body.get("response_type") == "in_channel":
                result = self._post(ch, text=text, blocks=blocks, thread_ts=thread_ts)
                changes.append(Change("message.posted", channel=ch.id, message=result))
            else:
                result = self._ephemeral(
                    ch, target.user, text=text, blocks=blocks, thread_ts=thread_ts, source="response_url"
                )
                changes.append(Change("ephemeral.posted", channel=ch.id, user=target.user, ephemeral=result))
                if target.original is None:
                    target.original = result  # a later replace_original replaces this reply
            target.posts += 1
            return result

    @staticmethod
    def _change_for(kind: ChangeKind, item: Message | Ephemeral) -> Change:
        if isinstance(item, Message):
            return Change(kind, channel=item.channel, message=item)
        return Change(kind, channel=item.channel, user=item.user, ephemeral=item)
