"""The pool of upstream keys, on LiteLLM's Router: which key to try, and which keys are resting.

Every Gemini key serves every Gemini model, so the Router holds one deployment per (model, key),
made the first time a model is asked for, and picks among a model's deployments by its routing
strategy. A deployment that got a 429 rests (a Router cooldown) for as long as Gemini's RetryInfo
said. The Router keeps its cooldowns in this process; the proxy keeps them in step with the other
replicas through service.state: a rest is written there off the request's path (the event loop
never waits on Redis), and a model's rests are read from there before a pick, at most once every
``REST_READ_SECONDS`` per model, so a key one replica found exhausted is not tried by the others.
Deployment ids name a key by a hash of it, never by the key.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from translator import DEFAULT_SPEC_DIR, AnthropicError

from . import litellm_adapter
from ..config import Settings
from .providers import Providers, load_providers
from ..state import SharedState

log = logging.getLogger("proxy.pool")
REST_PREFIX = "anthropic-proxy:rest:"
REST_READ_SECONDS = 1.0   # how stale another replica's rests may be here (LiteLLM's own interval)


@dataclass(frozen=True)
class Deployment:
    """One model on one key: the engine that calls it (providers.yaml), the LiteLLM arguments it adds to a
    call, and its id for rests."""

    id: str
    target: str
    engine: str
    params: dict[str, Any]


def key_tag(key: str) -> str:
    """A short, stable name of a key for ids and logs (the same on every replica)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Pool:
    """Deployments of the models asked for so far, and their rests."""

    def __init__(self, settings: Settings, state: SharedState, providers: Providers | None = None):
        self.settings, self.shared_state = settings, state
        self.providers = providers or load_providers(settings, settings.spec_dir or DEFAULT_SPEC_DIR)
        self.router = litellm_adapter.Router(model_list=[], num_retries=0, routing_strategy="simple-shuffle")
        self._ids: dict[str, list[str]] = {}
        self._deployments: dict[str, Deployment] = {}
        self._read_at: dict[str, float] = {}   # per model: when its shared rests were last read

    def deployment_ids(self, target: str) -> list[str]:
        """The ids of ``target``'s pooled deployments, added to the Router the first time."""
        ids = self._ids.get(target)
        if ids is None:
            ids = self._ids[target] = []
            provider = self.providers.of(target)
            for key in provider.keys or ():
                ids.append(f"{target}@{key_tag(key)}")
                params = {"api_key": key, **provider.params}
                self._deployments[ids[-1]] = Deployment(ids[-1], target, provider.engine, params)
                self.router.add_deployment(litellm_adapter.Deployment(
                    model_name=target, litellm_params={"model": target, **params, **provider.weights},  # type: ignore[arg-type]
                    model_info={"id": ids[-1]}))
        return ids

    async def pick(self, target: str) -> Deployment | None:
        """A deployment of ``target`` that is not resting (by the Router's strategy), or None."""
        provider = self.providers.of(target)
        if not provider.pooled:
            return Deployment(f"{target}@env", target, provider.engine, {})
        ids = self.deployment_ids(target)
        await self._read_shared_rests(target, ids)
        if not ids:
            raise AnthropicError(500, "api_error", provider.missing_keys)
        if len(ids) == 1:  # nothing to choose, only whether it rests (the Router's routing costs ~100 µs)
            resting = await self.router.health().cooldowns.async_get_active_cooldowns(ids, None)
            return None if resting else self._deployments[ids[0]]
        try:
            chosen = await self.router.select(target, {})
        except litellm_adapter.NoDeployment:
            return None
        return self._deployments[chosen["model_info"]["id"]]

    def rest(self, deployment: Deployment, seconds: float, reason: str) -> None:
        """Keep ``deployment`` out of the picks for ``seconds`` (on every replica, with Redis)."""
        if deployment.id not in self._deployments:
            return  # not pooled: nothing else to try
        log.info("resting %s for %.1fs (%s)", deployment.id, seconds, reason)
        self._cool(deployment.id, seconds, reason)
        until = json.dumps({"until": time.time() + seconds, "reason": reason}).encode()
        self.shared_state.spawn(self.shared_state.set(REST_PREFIX + deployment.id, until, seconds))

    def _cool(self, deployment_id: str, seconds: float, reason: str) -> None:
        self.router.health().cooldowns.add_deployment_to_cooldown(
            model_id=deployment_id, original_exception=reason, exception_status=429, cooldown_time=seconds)

    async def _read_shared_rests(self, target: str, ids: list[str]) -> None:
        """Take the rests other replicas wrote for ``target``'s keys into the Router's cooldowns."""
        now = time.monotonic()
        if not self.shared_state.shared or not ids or now < self._read_at.get(target, 0.0) + REST_READ_SECONDS:
            return
        self._read_at[target] = now
        for deployment_id, value in zip(ids, await self.shared_state.get_many([REST_PREFIX + i for i in ids])):
            if value is not None:
                rest = json.loads(value)
                if rest["until"] > time.time():
                    self._cool(deployment_id, rest["until"] - time.time(), rest.get("reason", ""))

    async def shortest_rest(self, targets: list[str]) -> float:
        """Seconds until the first deployment of ``targets`` is out of its rest."""
        ids = [i for target in targets for i in self.deployment_ids(target)]
        active = await self.router.health().cooldowns.async_get_active_cooldowns(ids, None)
        now = time.time()
        ends = [value["timestamp"] + value["cooldown_time"] - now for _, value in active]
        return max(0.0, min(ends)) if len(ends) == len(ids) and ends else 0.0

    async def state(self) -> dict[str, tuple[int, int]]:
        """Per model asked for so far: how many keys its pool has, and how many of them rest."""
        state = {}
        for target, ids in self._ids.items():
            resting = await self.router.health().cooldowns.async_get_active_cooldowns(ids, None) if ids else []
            state[target] = (len(ids), len(resting))
        return state
