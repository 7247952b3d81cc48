"""Per-key and per-model quotas, as Gemini's free and paid tiers enforce them.

Each (key, model) pair may make ``per_key`` calls per window, and each model ``per_model`` calls
across all keys; past either, the call is a 429 RESOURCE_EXHAUSTED with a QuotaFailure naming the
quota and a RetryInfo whose delay is the rest of the window, as the real API answers. Windows are
fixed, starting at the first call, like Gemini's per-minute counters. ``keys`` limits which keys are
valid at all (others are the 400 "API key not valid").
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Quotas:
    keys: frozenset[str] | None = None
    per_key: int | None = None
    per_model: dict[str, int] = field(default_factory=dict)
    window_s: float = 60.0
    _calls: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def knows(self, key: str) -> bool:
        return self.keys is None or key in self.keys

    def take(self, key: str, model: str) -> dict | None:
        """Count a call; None when allowed, else the error body fields of the 429."""
        now = time.monotonic()
        with self._lock:
            mine = self._live(key, model, now)
            everyone = [t for (k, m), calls in self._calls.items() if m == model
                        for t in self._live(k, m, now)]
            if self.per_key is not None and len(mine) >= self.per_key:
                return self._exhausted(mine[0] if mine else now, now, "GenerateRequestsPerMinutePerProjectPerModel", self.per_key, model)
            limit = self.per_model.get(model)
            if limit is not None and len(everyone) >= limit:
                return self._exhausted(min(everyone, default=now), now, "GenerateRequestsPerMinutePerModel", limit, model)
            mine.append(now)
            return None

    def _live(self, key: str, model: str, now: float) -> list[float]:
        calls = self._calls.setdefault((key, model), [])
        calls[:] = [t for t in calls if now - t < self.window_s]
        return calls

    def _exhausted(self, oldest: float, now: float, quota_id: str, limit: int, model: str) -> dict:
        rest = max(0.0, self.window_s - (now - oldest))
        delay = f"{math.ceil(rest)}s" if rest >= 1 else f"{rest:.3f}s"
        return {"code": 429, "status": "RESOURCE_EXHAUSTED",
                "message": f"You exceeded your current quota, please check your plan and billing details. "
                           f"Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests, "
                           f"limit: {limit}, model: {model}. Please retry in {rest:.1f}s.",
                "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                             "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_requests",
                                             "quotaId": quota_id, "quotaDimensions": {"model": model},
                                             "quotaValue": str(limit)}]},
                            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}
