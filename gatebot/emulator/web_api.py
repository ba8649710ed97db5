"""The emulator's HTTP face: Slack Web API methods and ``response_url`` endpoints, as a Starlette app.

Mount point: ``<server>/api/<method>`` — so ``WebClient(base_url="<server>/api/")`` (and the async
client) talk to it unchanged — and ``<server>/response/<token>`` for the ``response_url``s the driver
hands out. Like Slack, every API answer is HTTP 200 with ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``, except an injected rate limit (HTTP 429 + ``Retry-After``).
Arguments may come as query parameters, a form body (``blocks``/``view`` as JSON strings) or a JSON
body; the bot token as ``Authorization: Bearer`` or a ``token`` argument. The rules themselves live in
:mod:`gatebot.emulator.workspace`; this module only translates.

Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gatebot.emulator.files import SIGN_IN_PAGE, UploadedFile
from gatebot.emulator.workspace import ApiError, Workspace

__all__ = ["METHODS", "WebApi", "create_app"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def _json_default(obj: object) -> object:
    # JSON numbers are decoded as Decimal (house rule); anything that arrived as a JSON number was
    # written by json.dumps from a float or int, so converting back is exact.
    if isinstance(obj, Decimal):
        return float(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class SlackJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


class Params:
    """A method's arguments, merged from the query string and the body."""

    def __init__(self, data: JSON) -> None:
        self.data = data

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else json.dumps(value, default=_json_default)

    def require(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.text(name)
        if value is None:
            raise ApiError(error, f"missing required field: {name}")
        return value

    def flag(self, name: str) -> bool:
        value = self.data.get(name)
        return value is True or (isinstance(value, str) and value.lower() in ("true", "1")) or value == 1

    def structured(self, name: str, error: str) -> Any:
        """A JSON argument (``blocks``, ``view``, ...) that form bodies carry as a JSON string."""
        value = self.data.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return _loads(value)
            except ValueError:
                raise ApiError(error, f"{name} is not valid JSON") from None
        return value

    def blocks(self, name: str = "blocks") -> list[JSON] | None:
        value = self.structured(name, "invalid_blocks" if name == "blocks" else "invalid_attachments")
        if value is not None and not isinstance(value, list):
            raise ApiError(
                "invalid_blocks" if name == "blocks" else "invalid_attachments", f"{name} must be an array"
            )
        return value

    def view(self) -> JSON:
        value = self.structured("view", "invalid_arguments")
        if not isinstance(value, dict):
            raise ApiError("invalid_arguments", "missing required field: view")
        return value

    def object(self, name: str) -> JSON | None:
        value = self.structured(name, "invalid_arguments")
        if value is not None and not isinstance(value, dict):
            raise ApiError("invalid_arguments", f"{name} must be an object")
        return value


Handler = Callable[[Workspace, Params], JSON]
#: Every supported Web API method.
METHODS: dict[str, Handler] = {}


def _method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name] = handler
        return handler

    return register


@_method("api.test")
def _api_test(ws: Workspace, p: Params) -> JSON:
    return {"args": dict(p.data)} if p.data else {}


@_method("auth.test")
def _auth_test(ws: Workspace, p: Params) -> JSON:
    return {
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_name,
        "user": ws.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


@_method("chat.postMessage")
def _chat_post_message(ws: Workspace, p: Params) -> JSON:
    message = ws.post_message(
        p.require("channel", "channel_not_found"),
        text=p.text("text"),
        blocks=p.blocks(),
        attachments=p.blocks("attachments"),
        thread_ts=p.text("thread_ts"),
        reply_broadcast=p.flag("reply_broadcast"),
        metadata=p.object("metadata"),
    )
    return {"channel": message.channel, "ts": message.ts, "message": ws.message_dict(message)}


@_method("chat.update")
def _chat_update(ws: Workspace, p: Params) -> JSON:
    channel = p.require("channel", "channel_not_found")
    ts = p.require("ts", "message_not_found")
    message = ws.update_message(
        channel,
        ts,
        text=p.data.get("text") if isinstance(p.data.get("text"), str) else None,
        blocks=p.blocks(),
        attachments=p.blocks("attachments"),
        metadata=p.object("metadata"),
    )
    body = ws.message_dict(message)
    return {"channel": message.channel, "ts": message.ts, "text": message.text, "message": body}


@_method("chat.postEphemeral")
def _chat_post_ephemeral(ws: Workspace, p: Params) -> JSON:
    ephemeral = ws.post_ephemeral(
        p.require("channel", "channel_not_found"),
        p.require("user", "user_not_found"),
        text=p.text("text"),
        blocks=p.blocks(),
        thread_ts=p.text("thread_ts"),
    )
    return {"message_ts": ephemeral.ts}


@_method("chat.delete")
def _chat_delete(ws: Workspace, p: Params) -> JSON:
    message = ws.delete_message(
        p.require("channel", "channel_not_found"), p.require("ts", "message_not_found")
    )
    return {"channel": message.channel, "ts": message.ts}


@_method("chat.getPermalink")
def _chat_get_permalink(ws: Workspace, p: Params) -> JSON:
    channel = ws.channel(p.require("channel", "channel_not_found"))
    link = ws.permalink(channel.id, p.require("message_ts", "message_not_found"))
    return {"channel": channel.id, "permalink": link}


@_method("conversations.open")
def _conversations_open(ws: Workspace, p: Params) -> JSON:
    if channel_id := p.text("channel"):
        channel = ws.channel(channel_id)
        existed = True
    else:
        users = [u.strip() for u in p.require("users", "users_list_not_supplied").split(",") if u.strip()]
        if len(users) != 1:
            raise ApiError("not_supported", "the emulator opens one-to-one DMs only")
        channel, existed = ws.open_dm(users[0])
    body: JSON = {"channel": ws.channel_dict(channel) if p.flag("return_im") else {"id": channel.id}}
    if existed:
        body |= {"no_op": True, "already_open": True}
    return body


@_method("conversations.info")
def _conversations_info(ws: Workspace, p: Params) -> JSON:
    channel = ws.channel(p.require("channel", "channel_not_found"))
    if channel.is_private and not channel.is_member:
        raise ApiError("channel_not_found")
    return {"channel": ws.channel_dict(channel)}


@_method("conversations.members")
def _conversations_members(ws: Workspace, p: Params) -> JSON:
    channel = ws.channel(p.require("channel", "channel_not_found"))
    if channel.is_private and not channel.is_member:
        raise ApiError("channel_not_found")
    members = list(channel.members)
    if channel.is_member:
        members.append(ws.bot_user_id)
    return {"members": members, "response_metadata": {"next_cursor": ""}}


@_method("users.info")
def _users_info(ws: Workspace, p: Params) -> JSON:
    return {"user": ws.user_dict(ws.user(p.require("user", "user_not_found")))}


@_method("usergroups.users.list")
def _usergroups_users_list(ws: Workspace, p: Params) -> JSON:
    return {"users": ws.usergroup_members(p.require("usergroup", "no_such_subteam"))}


@_method("views.open")
def _views_open(ws: Workspace, p: Params) -> JSON:
    view = ws.open_view(p.require("trigger_id", "invalid_trigger_id"), p.view())
    return {"view": ws.view_dict(view)}


@_method("views.push")
def _views_push(ws: Workspace, p: Params) -> JSON:
    view = ws.push_view(p.require("trigger_id", "invalid_trigger_id"), p.view())
    return {"view": ws.view_dict(view)}


@_method("views.update")
def _views_update(ws: Workspace, p: Params) -> JSON:
    view = ws.update_view(
        p.view(), view_id=p.text("view_id"), external_id=p.text("external_id"), hash=p.text("hash")
    )
    return {"view": ws.view_dict(view)}


@_method("views.publish")
def _views_publish(ws: Workspace, p: Params) -> JSON:
    view = ws.publish_home(p.require("user_id", "user_not_found"), p.view(), hash=p.text("hash"))
    return {"view": ws.view_dict(view)}


@_method("files.getUploadURLExternal")
def _files_get_upload_url(ws: Workspace, p: Params) -> JSON:
    filename = p.require("filename")
    try:
        length = int(p.require("length"))
    except ValueError:
        raise ApiError("invalid_arguments", "length must be an integer") from None
    file_id = f"F{len(ws.files) + 1:08d}"
    ws.files[file_id] = UploadedFile(file_id, filename, length, created=int(ws.clock.now().timestamp()))
    return {"file_id": file_id, "upload_path": f"/upload/{file_id}"}  # made absolute by WebApi.call


@_method("files.completeUploadExternal")
def _files_complete_upload(ws: Workspace, p: Params) -> JSON:
    listed = p.structured("files", "invalid_arguments")
    if not isinstance(listed, list) or not listed:
        raise ApiError("invalid_arguments", "files must be a non-empty JSON list")
    done: list[UploadedFile] = []
    for item in listed:
        found = ws.files.get(str(item.get("id") if isinstance(item, dict) else ""))
        if found is None or found.content is None:
            raise ApiError("file_not_found")
        found.title = (item.get("title") if isinstance(item, dict) else None) or found.title or found.filename
        done.append(found)
    channel = p.text("channel_id")
    if channel:
        comment = p.text("initial_comment") or ", ".join(f.title or f.filename for f in done)
        message = ws.post_message(channel, text=comment, thread_ts=p.text("thread_ts"))
        for f in done:
            f.shares.append((channel, message.ts))
    return {"files": [{"id": f.id, "name": f.filename, "title": f.title, "size": len(f.content or b"")}
                      for f in done]}


def _error_body(error: ApiError) -> JSON:
    body: JSON = {"ok": False, "error": error.error}
    if error.messages:
        body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in error.messages]}
    return body


async def _read_body(request: Request) -> JSON:
    raw = await request.body()
    if not raw:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = _loads(raw)
        except ValueError:
            raise ApiError("invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError("invalid_json")
        return data
    if content_type.startswith("multipart/"):
        raise ApiError("invalid_form_data", "the emulator does not take multipart bodies (file uploads)")
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ApiError("invalid_form_data") from None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


class WebApi:
    """The request handlers for one workspace (``workspace`` may be swapped between tests)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    async def call(self, request: Request) -> SlackJSONResponse:
        ws = self.workspace
        method = request.path_params["method"]
        params: JSON = dict(request.query_params)
        try:
            params.update(await _read_body(request))
        except ApiError as exc:
            ws.record_call(method, {}, error=exc.error)
            return SlackJSONResponse(_error_body(exc))
        token = _bearer(request) or params.pop("token", None)
        params.pop("token", None)
        handler = METHODS.get(method)
        if not token:
            error = ApiError("not_authed")
        elif token != ws.bot_token:
            error = ApiError("invalid_auth")
        elif handler is None:
            error = ApiError("unknown_method")
        else:
            fault = ws.take_fault(method)
            if fault is not None and fault.retry_after is not None:
                ws.record_call(method, params, error=fault.error)
                log.debug("emulator: %s rate limited (Retry-After %s)", method, fault.retry_after)
                return SlackJSONResponse(
                    {"ok": False, "error": fault.error},
                    status_code=429,
                    headers={"Retry-After": str(fault.retry_after)},
                )
            if fault is not None:
                error = ApiError(fault.error)
            else:
                try:
                    body = handler(ws, Params(params))
                except ApiError as exc:
                    error = exc
                else:
                    ws.record_call(method, params)
                    log.debug("emulator: %s ok", method)
                    if "upload_path" in body:
                        body["upload_url"] = str(request.base_url).rstrip("/") + body.pop("upload_path")
                    return SlackJSONResponse({"ok": True, **body})
        ws.record_call(method, params, error=error.error)
        log.debug("emulator: %s -> %s", method, error.error)
        return SlackJSONResponse(_error_body(error))

    async def respond(self, request: Request) -> SlackJSONResponse:
        """A post to a ``response_url``."""
        ws = self.workspace
        token = request.path_params["token"]
        try:
            body = await _read_body(request)
            if isinstance(body.get("payload"), str):  # form-encoded ``payload=`` like incoming webhooks
                body = _loads(body["payload"])
            if isinstance(body.get("blocks"), str):
                body["blocks"] = _loads(body["blocks"])
            ws.respond(token, body)
        except ValueError:
            return SlackJSONResponse({"ok": False, "error": "invalid_payload"}, status_code=400)
        except ApiError as exc:
            status = 404 if exc.error in ("invalid_url", "expired_url", "used_url") else 400
            return SlackJSONResponse(_error_body(exc), status_code=status)
        return SlackJSONResponse({"ok": True})

    async def upload(self, request: Request) -> PlainTextResponse:
        """The upload URL of ``files.getUploadURLExternal``: the file's bytes, as the body."""
        found = self.workspace.files.get(request.path_params["file_id"])
        if found is None:
            return PlainTextResponse("file not found", status_code=404)
        found.content = await request.body()
        return PlainTextResponse(f"OK - {len(found.content)}")

    async def download(self, request: Request) -> Response:
        """A file's ``url_private`` / ``url_private_download``: its bytes with the bot token, else (as Slack
        does) HTTP 200 with the HTML sign-in page."""
        ws = self.workspace
        team, _, file_id = str(request.path_params["team_file"]).partition("-")
        found = ws.files.get(file_id)
        if found is None or team != ws.team_id or found.content is None \
                or request.path_params["name"] != found.filename:
            return PlainTextResponse("file not found", status_code=404)
        if _bearer(request) != ws.bot_token:
            return HTMLResponse(SIGN_IN_PAGE)
        return Response(found.content, media_type=found.mimetype,
                        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'})

    async def health(self, request: Request) -> SlackJSONResponse:
        return SlackJSONResponse({"ok": True, "emulator": "slack", "team_id": self.workspace.team_id})


def create_app(workspace: Workspace) -> Starlette:
    """The ASGI app serving ``workspace``: ``/api/<method>``, ``/response/<token>`` and ``/`` (health)."""
    api = WebApi(workspace)
    app = Starlette(
        routes=[
            Route("/api/{method}", api.call, methods=["GET", "POST"]),
            Route("/response/{token}", api.respond, methods=["POST"]),
            Route("/upload/{file_id}", api.upload, methods=["POST"]),
            Route("/files-pri/{team_file}/download/{name}", api.download, methods=["GET"]),
            Route("/files-pri/{team_file}/{name}", api.download, methods=["GET"]),
            Route("/", api.health, methods=["GET"]),
        ]
    )
    app.state.web_api = api  # lets a running server switch to a fresh workspace
    return app
