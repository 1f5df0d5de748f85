"""Request body limits, counted while the body is read.

Every route takes at most `max_body_bytes` (JSON and forms); a route marked `@accepts_images` takes up to
`max_image_bytes`. A Content-Length over the limit is refused before the first byte of the body is read (an
`Expect: 100-continue` client is never invited to send it); a body without a length is refused as soon as
the bytes received pass the limit. Either way the answer is 413 naming the limit, nothing is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

F = TypeVar("F", bound=Callable[..., object])
_IMAGES = "_custodian_accepts_images"


def accepts_images(endpoint: F) -> F:
    """Mark a route that takes a photo: its body may be up to `max_image_bytes`. Put it under @router.post."""
    setattr(endpoint, _IMAGES, True)
    return endpoint


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the request body is larger than this route accepts ({limit} bytes at most)",
        )


class BodyLimit:
    """ASGI middleware. The router has matched the route by the time anything reads the body, so the limit
    is chosen on the first read, from the endpoint the router put in the scope."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_image_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_image_bytes = max_image_bytes

    def limit_for(self, scope: Scope) -> int:
        return self.max_image_bytes if getattr(scope.get("endpoint"), _IMAGES, False) else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int | None = None
        received = 0

        async def limited_receive() -> Message:
            nonlocal limit, received
            if limit is None:
                limit = self.limit_for(scope)
                declared = Headers(scope=scope).get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
