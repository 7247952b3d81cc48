"""The app as the handlers see it: a Quart app that carries the proxy's shared state, typed.

Quart types ``current_app`` as a plain ``Quart``; the attributes ``create_app`` and the ``register``
functions hang on it are declared here, so that mypy checks every ``current_app.proxy`` use."""
from __future__ import annotations

from typing import TYPE_CHECKING, cast

import quart
from quart import Quart

if TYPE_CHECKING:
    from .app import Proxy
    from .batch.batch_jobs import BatchEngine
    from .batch.files import FileStore


class ProxyApp(Quart):
    """The Quart app ``create_app`` builds."""

    proxy: Proxy          # set by create_app
    batches: BatchEngine  # set while serving with a ledger (batches.register)
    files: FileStore      # set while serving with a ledger (files.register)


current_app = cast(ProxyApp, quart.current_app)
