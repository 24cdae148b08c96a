"""Server-sent events that notice a client going away, whatever the ASGI server reports.

Starlette's StreamingResponse watches for `http.disconnect` only under ASGI spec < 2.4, and
otherwise learns of a gone client when a write fails, which never happens while a request
waits in the queue or the model is between pieces. This response always listens, and on a
disconnect cancels the producer and closes it (`aclose`), which runs its `finally`: that is
where the generation run sets its cancel event.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(name: str | None, data: Any) -> str:
    """One SSE message; `data` is sent as compact JSON unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


class EventStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[str], on_close: Callable[[], None] | None = None,
                 status_code: int = 200) -> None:
        super().__init__(body, status_code=status_code, headers=HEADERS,
                         media_type=self.media_type)
        self._body = body
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def produce() -> None:
                    with contextlib.suppress(OSError):  # the connection broke mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(produce)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                close = getattr(self._body, "aclose", None)
                if close is not None:
                    await close()
                if self._on_close is not None:
                    self._on_close()
