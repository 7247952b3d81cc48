"""Context management, the service's half: the edits are planned by the translator; past a
``compact_20260112`` trigger the summary is asked of the same model through the normal pipeline
(translation, pool, retries, fallbacks, signatures), and an answer paused after compaction is built
here without asking Gemini anything more.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from quart import Response

import translator

from .. import offload
from ..web import sse, streaming
from ..web.errors import json_response


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The request to translate, what the answer reports, and whether the answer is only the
    compaction block (``pause_after_compaction``)."""

    body: Any
    report: translator.EditReport
    paused: bool = False


async def prepare(body: Any, proxy: Any, message_id: str) -> Prepared:
    """The request after its edits and, when a compaction is due, after the summary replaced the
    conversation (a large request is edited in a worker thread, as it is translated: service.offload).
    Raises AnthropicError: a 400 for a refused edit, the summary call's own errors."""
    table = proxy.spec.context
    plan = await offload.run(lambda: translator.plan_edits(body, table))
    if plan.compact is None:
        return Prepared(plan.body, plan.report)
    request = translator.summary_request(plan.body, plan.compact, table)
    message = await _answer(request, proxy, message_id)
    block = translator.compaction_block(translator.summary_text(message))
    report = dataclasses.replace(plan.report, lead_blocks=(block,),
                                 compaction_usage=translator.compaction_usage(message["usage"]))
    paused = bool(plan.compact.settings.get("pause_after_compaction")) and block["content"] is not None
    return Prepared(translator.compacted_body(plan.body, block, table), report, paused)


async def _answer(request: dict[str, Any], proxy: Any, message_id: str) -> dict[str, Any]:
    """The model's whole answer to ``request`` (not streamed), as any other answer is made."""
    spec = proxy.spec

    def translate(target: str | None = None) -> translator.UpstreamCall:
        return translator.translate_request(request, spec, limits=proxy.limits, target=target)

    call = translate()
    job = streaming.Job(call, translate, lambda: translator.StreamTranslator(call, spec, message_id + "_compaction"),
                        proxy.http)
    return await streaming.complete(job, spec, proxy.settings, proxy.pool, proxy.lifecycle.live)


def paused_answer(prepared: Prepared, message_id: str, stream: bool, table: Any) -> tuple[Response, dict]:
    """The answer that is only the compaction block, as a stream or a Message; and that Message."""
    model = prepared.body.get("model") if isinstance(prepared.body, dict) else None
    events = prepared.report.paused_events(message_id, str(model), table.pause_stop_reason)
    message = translator.collect(events)
    if stream:
        return Response(b"".join(sse.frame(event) for event in events), status=200, headers=dict(sse.HEADERS)), message
    return json_response(message), message
