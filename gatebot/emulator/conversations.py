"""Messages and ephemeral messages: posting, editing and deleting with Slack's rules (``not_in_channel``,
``thread_not_found``, ``cant_update_message``, ``msg_too_long``, ``invalid_blocks``), and reading them back.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

import copy

from gatebot.emulator.blockkit import assign_ids, block_problems
from gatebot.emulator.directory import Directory
from gatebot.emulator.model import JSON, ApiError, Change, Channel, Ephemeral, Message, Revision
from gatebot.slack.blocks.limits import MAX_MESSAGE_BLOCKS

#: ``chat.postMessage`` refuses longer ``text`` (``msg_too_long``); not a Block Kit limit.
MAX_MESSAGE_TEXT = 40_000


class Conversations(Directory):
    """Channel messages (with threads and edit history) and ephemeral messages."""

    def post_message(
        self,
        channel: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
        attachments: list[JSON] | None = None,
        user: str | None = None,
        check_membership: bool = True,
    ) -> Message:
        """Post as the bot (``user=None``, the rules of ``chat.postMessage``) or as a person (demo input).

        ``check_membership=False`` is for what Slack posts on the app's behalf without the bot being
        in the channel (an ``in_channel`` answer to a slash command).
        """
        with self._mutating() as changes:
            ch = self.channel(channel)
            if user is None:
                if check_membership:
                    self._check_bot_can_post(ch)
            else:
                self.user(user)
            message = self._post(
                ch,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast,
                metadata=metadata,
                attachments=attachments,
                user=user,
            )
            changes.append(Change("message.posted", channel=ch.id, user=user, message=message))
            return message

    def _check_bot_can_post(self, ch: Channel) -> None:
        if ch.is_archived:
            raise ApiError("is_archived")
        if not ch.is_member:
            raise ApiError("not_in_channel")

    def _check_content(
        self, text: str | None, blocks: list[JSON] | None, attachments: list[JSON] | None
    ) -> None:
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
        if text is not None and len(text) > MAX_MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        if blocks is not None:
            problems = block_problems(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
            if problems:
                raise ApiError("invalid_blocks", *problems)

    def _post(
        self,
        ch: Channel,
        *,
        text: str | None,
        blocks: list[JSON] | None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
        attachments: list[JSON] | None = None,
        user: str | None = None,
    ) -> Message:
        self._check_content(text, blocks, attachments)
        if thread_ts is not None:
            parent = self._by_ts.get((ch.id, thread_ts))
            if parent is None or parent.deleted:
                raise ApiError("thread_not_found")
            thread_ts = parent.thread_ts or parent.ts
        ts = self._next_ts()
        message = Message(
            channel=ch.id,
            ts=ts,
            text=text or "",
            blocks=assign_ids(blocks, f"{ch.id}:{ts}") if blocks is not None else None,
            user=user or self.bot_user_id,
            bot_id=None if user else self.bot_id,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast,
            metadata=copy.deepcopy(metadata),
            attachments=copy.deepcopy(attachments),
        )
        if thread_ts is not None:
            parent = self._by_ts[(ch.id, thread_ts)]
            parent.thread_ts = parent.ts
        self._messages[ch.id].append(message)
        self._by_ts[(ch.id, ts)] = message
        return message

    def message(self, channel: str, ts: str) -> Message:
        """The message at ``ts`` (``message_not_found`` if there is none or it was deleted)."""
        with self._lock:
            ch = self.channel(channel)
            message = self._by_ts.get((ch.id, ts))
            if message is None or message.deleted:
                raise ApiError("message_not_found")
            return message

    def update_message(
        self,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        """``chat.update``: replace text and/or blocks (omitted ones are kept, as in Slack); the previous
        content is kept in ``message.edits``."""
        with self._mutating() as changes:
            message = self.message(channel, ts)
            if message.bot_id != self.bot_id:
                raise ApiError("cant_update_message")
            self._edit(message, text=text, blocks=blocks, attachments=attachments, metadata=metadata)
            changes.append(Change("message.updated", channel=message.channel, message=message))
            return message

    def _edit(
        self,
        message: Message,
        *,
        text: str | None,
        blocks: list[JSON] | None,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> None:
        new_text = message.text if text is None else text
        new_blocks = message.blocks if blocks is None else blocks
        self._check_content(new_text, new_blocks, attachments or message.attachments)
        edited_ts = self._next_ts()
        message.edits.append(Revision(message.text, message.blocks, edited_ts))
        message.text = new_text
        if blocks is not None:
            message.blocks = assign_ids(blocks, f"{message.channel}:{edited_ts}")
        if attachments is not None:
            message.attachments = copy.deepcopy(attachments)
        if metadata is not None:
            message.metadata = copy.deepcopy(metadata)

    def delete_message(self, channel: str, ts: str) -> Message:
        with self._mutating() as changes:
            message = self.message(channel, ts)
            if message.bot_id != self.bot_id:
                raise ApiError("cant_delete_message")
            message.deleted = True
            changes.append(Change("message.deleted", channel=message.channel, message=message))
            return message

    def permalink(self, channel: str, ts: str) -> str:
        message = self.message(channel, ts)
        link = f"https://{self.team_domain}.slack.com/archives/{message.channel}/p{ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return link

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        source: str = "chat.postEphemeral",
        check_membership: bool = True,
    ) -> Ephemeral:
        """``chat.postEphemeral`` (with its membership rules), or an ephemeral the driver records."""
        with self._mutating() as changes:
            ch = self.channel(channel)
            self.user(user)
            if check_membership:
                self._check_bot_can_post(ch)
                if user not in ch.members:
                    raise ApiError("user_not_in_channel")
            ephemeral = self._ephemeral(
                ch, user, text=text, blocks=blocks, thread_ts=thread_ts, source=source
            )
            changes.append(Change("ephemeral.posted", channel=ch.id, user=user, ephemeral=ephemeral))
            return ephemeral

    def _ephemeral(
        self,
        ch: Channel,
        user: str,
        *,
        text: str | None,
        blocks: list[JSON] | None,
        thread_ts: str | None,
        source: str,
    ) -> Ephemeral:
        self._check_content(text, blocks, None)
        ts = self._next_ts()
        ephemeral = Ephemeral(
            channel=ch.id,
            user=user,
            ts=ts,
            text=text or "",
            blocks=assign_ids(blocks, f"{ch.id}:{ts}:e") if blocks is not None else None,
            thread_ts=thread_ts,
            source=source,
        )
        self._ephemerals.append(ephemeral)
        return ephemeral

    # ------------------------------------------------------------------------------ queries

    def messages(self, channel: str, *, include_replies: bool = False) -> list[Message]:
        """Messages in a channel, oldest first; thread replies only if asked (or broadcast)."""
        with self._lock:
            ch = self.channel(channel)
            return [
                m
                for m in self._messages[ch.id]
                if not m.deleted and (include_replies or not m.is_reply or m.reply_broadcast)
            ]

    def latest_message(self, channel: str) -> Message | None:
        """The newest top-level message in a channel."""
        found = self.messages(channel)
        return found[-1] if found else None

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread (without its parent), oldest first."""
        with self._lock:
            ch = self.channel(channel)
            return [
                m for m in self._messages[ch.id] if not m.deleted and m.is_reply and m.thread_ts == thread_ts
            ]

    def dm_messages(self, user: str) -> list[Message]:
        """Messages in the bot's DM with ``user`` (including thread replies)."""
        return self.messages(self.dm_channel(user).id, include_replies=True)

    def ephemerals(self, user: str | None = None, *, channel: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages (for ``user``, in ``channel``), oldest first."""
        with self._lock:
            cid = self.channel(channel).id if channel is not None else None
            return [
                e
                for e in self._ephemerals
                if not e.deleted and (user is None or e.user == user) and (cid is None or e.channel == cid)
            ]

    def latest_ephemeral(self, user: str, *, channel: str | None = None) -> Ephemeral | None:
        found = self.ephemerals(user, channel=channel)
        return found[-1] if found else None

    # -------------------------------------------------------------------------- serialising

    def message_dict(self, message: Message) -> JSON:
        """A message as Slack's Web API and interaction payloads show it."""
        with self._lock:
            data: JSON = {"type": "message", "text": message.text, "user": message.user, "ts": message.ts}
            if message.bot_id is not None:
                data["bot_id"] = message.bot_id
                data["app_id"] = self.app_id
                data["bot_profile"] = {
                    "id": message.bot_id,
                    "app_id": self.app_id,
                    "name": self.bot_name,
                    "deleted": False,
                    "team_id": self.team_id,
                }
            data["team"] = self.team_id
            if message.blocks is not None:
                data["blocks"] = copy.deepcopy(message.blocks)
            if message.attachments is not None:
                data["attachments"] = copy.deepcopy(message.attachments)
            if message.metadata is not None:
                data["metadata"] = copy.deepcopy(message.metadata)
            if message.thread_ts is not None:
                data["thread_ts"] = message.thread_ts
                if not message.is_reply:
                    replies = [
                        m for m in self._messages[message.channel] if m.is_reply and m.thread_ts == message.ts
                    ]
                    data["reply_count"] = len(replies)
                    data["reply_users"] = sorted({str(m.user) for m in replies})
                    if replies:
                        data["latest_reply"] = replies[-1].ts
                else:
                    data["parent_user_id"] = self._by_ts[(message.channel, message.thread_ts)].user
            if message.edits:
                data["edited"] = {"user": message.user, "ts": message.edits[-1].edited_ts}
            return data
