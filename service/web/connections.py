"""Descriptors under connection churn: a closed connection gives its socket back at once.

Hypercorn (0.18) reads each connection in ``TCPServer._read_data`` inside a task group that also
holds the connection's keep-alive timer (``_idle_timeout``, started whenever the connection is
idle). When an idle client closes, the reader does see EOF and the protocol is told ``Closed``,
but neither HTTP/1.1's nor HTTP/2's protocol answers an idle connection's ``Closed`` by closing
it; the task group then waits for the timer, and the socket stays open until
``keep_alive_timeout`` (75 s in hypercorn.toml) has run out. 300 connections opened and closed
kept 300 descriptors for 75 s; a probe at 10 connections/s held ~700, and a worker at systemd's
limit of 1,024 ran out.

:class:`ReleasingTCPServer` stops the keep-alive timer as soon as the reader has ended, so the
task group ends and Hypercorn's own ``_close`` runs at once. Streams still in the group (an
answer being written) are untouched: the protocol has already told them the client left.
:func:`install` puts it where Hypercorn's asyncio and uvloop workers take their ``TCPServer``
from, before the worker serves (service.app imports this module). It also raises the soft
``RLIMIT_NOFILE`` to the hard limit: each client connection and each upstream connection is a
descriptor, and 1,024 is a soft default, not a need.

It also lets each read of a connection take up to ``READ_BYTES`` (1 MiB) where Hypercorn takes 64 KiB:
a 1 MB Claude Code turn arrived in ~17 reads, each a round through asyncio's reader, h11, Hypercorn and
Quart (with a copy of the bytes left behind at each), which cost ~2.5 ms of a worker's CPU; a read
returns what the connection has buffered, so a small request reads as before.
"""
from __future__ import annotations

import logging
import resource
from importlib.metadata import version

import hypercorn.asyncio.run as hypercorn_run
import hypercorn.asyncio.tcp_server as hypercorn_tcp
from hypercorn.asyncio.tcp_server import TCPServer

log = logging.getLogger("proxy")
READ_BYTES = 1 << 20   # the most one read of a connection takes (Hypercorn's MAX_RECV is 64 KiB)


class ReleasingTCPServer(TCPServer):
    """Hypercorn's connection, closed when the client closes it rather than when keep-alive expires."""

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            await self.idle_task.stop()


def raise_descriptor_limit() -> tuple[int, int]:
    """The soft RLIMIT_NOFILE raised to the hard one; returns (soft, hard) as they now are."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the descriptor limit from %d to %d: %s", soft, hard, exc)
    return soft, hard


def install() -> None:
    """Take Hypercorn's connection class for ours, if Hypercorn still has the shape this expects."""
    raise_descriptor_limit()
    current = getattr(hypercorn_run, "TCPServer", None)
    if current is ReleasingTCPServer:
        return
    if (current is not TCPServer or not hasattr(TCPServer, "_read_data")
            or "idle_task" not in TCPServer.__init__.__code__.co_names):
        log.error("Hypercorn %s: TCPServer is not where or what service.web.connections expects; closed idle "
                  "connections keep their descriptor until keep_alive_timeout.", version("hypercorn"))
        return
    hypercorn_run.TCPServer = ReleasingTCPServer  # type: ignore[misc]
    if isinstance(getattr(hypercorn_tcp, "MAX_RECV", None), int):
        hypercorn_tcp.MAX_RECV = READ_BYTES
    else:
        log.error("Hypercorn %s: MAX_RECV is not where service.web.connections expects; big requests are read "
                  "64 KiB at a time.", version("hypercorn"))
