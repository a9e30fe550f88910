"""A request body size limit (Starlette and FastAPI have none built in)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Answer 413 when a request body exceeds ``max_bytes``, declared or streamed.

    The body is read in full before the app sees it (FastAPI reads it whole anyway),
    so an oversized request never reaches a route, not even truncated.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the size, then replay the body to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit():
            await reject(send, 400, "Content-Length is not a number")
            return
        too_large = f"request body over {self.max_bytes} bytes"
        if int(declared) > self.max_bytes:
            await reject(send, 413, too_large)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await reject(send, 413, too_large)
                return
            more = message.get("more_body", False)

        async def replay() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        await self.app(scope, replay, send)


async def reject(send: Send, status: int, detail: str) -> None:
    """Send a JSON error response."""
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
