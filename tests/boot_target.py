"""The app tests/test_churn.py starts behind service.boot: its import waits until the test opens the gate,
as the proxy's import takes seconds."""
from __future__ import annotations

from tests.test_churn import IMPORT_GATE

IMPORT_GATE.wait(30)


async def app(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"served": "' + scope["path"].encode() + b'"}'})
