"""``gemini-proxy serve``: Hypercorn's workers under a master of our own.

Hypercorn's own master (``hypercorn --config hypercorn.toml service.app:app``) exits with status 0 when a
worker fails to start (0.18: its second ``_join_exited`` overwrites the failure), and answers SIGHUP by
restarting every worker. This master starts the same workers (Hypercorn's ``uvloop_worker``, spawned, with
the same shutdown event, so the drain in lifecycle.py works unchanged) but:

- a worker that cannot start prints one line naming the cause and the master exits with status 3;
- SIGHUP is passed on to each worker, which re-reads its tables in place (reload.py), streams untouched;
- SIGINT and SIGTERM set the shutdown event: the workers drain as under Hypercorn's master.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from multiprocessing import get_context
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from ..config import StartupFailed, credentials_problem, load_settings

STARTUP_FAILED = 3  # the exit status when a worker could not start (systemd, Docker, Kubernetes restart on it)
PACKAGE = Path(__file__).resolve().parent.parent


def resource(name: str) -> Path:
    """A file shipped in the package (an installed wheel), else the checkout's."""
    packaged = PACKAGE / name
    return packaged if packaged.is_file() else PACKAGE.parent / name


def pid_file(port: int) -> Path:
    """Where ``serve`` on ``port`` writes its pid, for ``gemini-proxy reload``."""
    return Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"gemini-proxy-{port}.pid"


def arguments(name: str, sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--port", type=int, help="port to listen on (default: hypercorn.toml's, 8082)")
    sub.add_argument("--host", help="address to listen on (default: hypercorn.toml's, 127.0.0.1; bind beyond "
                                    "loopback only with PROXY_API_KEY set)")
    sub.add_argument("--workers", type=int, help="worker processes (default: hypercorn.toml's, 1)")
    sub.add_argument("--config", default=None, help="another hypercorn.toml")
    sub.set_defaults(run=serve)


def hypercorn_config(args: argparse.Namespace) -> Any:
    from hypercorn.config import Config
    config = Config.from_toml(args.config or resource("hypercorn.toml"))
    config.application_path = "service.app:app"
    host, _, port = config.bind[0].rpartition(":")
    config.bind = [f"{args.host or host}:{args.port or port}"]
    if args.workers:
        config.workers = args.workers
    return config


def worker(config: Any, sockets: Any, shutdown_event: Any, reloads_sent: Any) -> None:
    """One Hypercorn worker; a start-up failure is one line on stderr and this process's status."""
    from hypercorn.asyncio.run import uvloop_worker
    from hypercorn.utils import LifespanFailureError

    from ..reload import note_reload_baseline
    note_reload_baseline(reloads_sent)
    logging.getLogger("service.app").addFilter(_no_startup_traceback)  # Quart's logger: the line below says it
    try:
        uvloop_worker(config=config, sockets=sockets, shutdown_event=shutdown_event)
        return
    except LifespanFailureError as failure:
        cause = str(failure).split(" ", 4)[-1].strip("'")
    except (ValueError, ImportError, OSError, RuntimeError) as failure:  # the app's import: settings, LiteLLM
        cause = f"{type(failure).__name__}: {failure}"
    print(f"gemini-proxy: start-up failed: {cause}", file=sys.stderr, flush=True)
    os._exit(STARTUP_FAILED)  # nothing to keep at start-up; no finalizers' noise after the one line


def _no_startup_traceback(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], StartupFailed))


def serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ValueError as invalid:
        print(f"gemini-proxy: {invalid}", file=sys.stderr)
        return 2
    if problem := credentials_problem(settings):
        print(f"gemini-proxy: {problem}", file=sys.stderr)
        return 2
    config = hypercorn_config(args)
    sockets = config.create_sockets()
    context = get_context("spawn")
    shutdown = context.Event()
    reloads_sent = context.RawValue("L", 0)  # raised before each SIGHUP is passed on; read by workers (reload.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers inherit it: the master decides
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited too: a worker still starting is not killed by a reload
    workers = [context.Process(target=worker, kwargs={"config": config, "sockets": sockets,
                                                      "shutdown_event": shutdown, "reloads_sent": reloads_sent})
               for _ in range(config.workers)]
    for process in workers:
        process.start()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: shutdown.set())

    def forward_hangup(*_: object) -> None:
        reloads_sent.value += 1
        for process in workers:
            if process.is_alive() and process.pid is not None:  # a started process has its pid
                os.kill(process.pid, signal.SIGHUP)

    signal.signal(signal.SIGHUP, forward_hangup)
    pid_path = pid_file(int(config.bind[0].rpartition(":")[2]))
    pid_path.write_text(str(os.getpid()))
    try:
        return _supervise(workers, shutdown)
    finally:
        pid_path.unlink(missing_ok=True)
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.close()


def _supervise(workers: list, shutdown: Any) -> int:
    """Until every worker has exited; the first failure stops the others, and is the status."""
    status = 0
    running = list(workers)
    while running:
        wait([process.sentinel for process in running])
        for process in [p for p in running if p.exitcode is not None]:
            running.remove(process)
            if process.exitcode != 0 and not shutdown.is_set():
                status = status or (process.exitcode if process.exitcode > 0 else 1)
                shutdown.set()
    return status
