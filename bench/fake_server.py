"""The project's fake Gemini (``tests/fake_gemini.py``) in the foreground, for the benchmarks.

Same as ``python -m tests.fake_gemini --quiet --default-spec JSON`` (prints ``PORT n``), with one
difference: a listen backlog large enough for 1,000 connections opened at once (aiohttp's default
of 128 would make the scale test measure SYN retransmits instead of the proxy). No request log.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiohttp import web

from tests.fake_gemini import FakeGemini


async def _serve(fake: FakeGemini, host: str, port: int, backlog: int) -> None:
    runner = web.AppRunner(fake.make_app(), handle_signals=False, handler_cancellation=True, access_log=None,
                           shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=backlog)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--default-spec")
    args = ap.parse_args(argv)
    fake = FakeGemini(args.host, args.port, keep_log=False, verbose=not args.quiet,
                      default_spec=json.loads(args.default_spec) if args.default_spec else None)
    try:
        asyncio.run(_serve(fake, args.host, args.port, args.backlog))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
