"""Thought signatures: the fake issues them and checks those a request sends back.

A signature is random base64 + an HMAC of the model name and the payload, so that one replayed to
another model is "Corrupted"; checking needs no state but the secret.  Signatures a spec scripts in
its parts are accepted as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

from .validation import ModelInfo, Reject

DUMMY_SIGNATURE = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="


class SignatureMixin:
    """FakeGemini's signature methods.  State (set in FakeGemini.__init__): ``_secret`` (HMAC key), ``_cond``
    (the lock), ``keep_log``, ``issued_signatures`` (every signature handed out, for tests to inspect) and
    ``_spec_sigs`` (signatures scripted by specs, valid for any model)."""

    _secret: bytes
    _cond: threading.Condition
    keep_log: bool
    issued_signatures: set[str]
    _spec_sigs: set[str]

    def _new_signature(self, model: str) -> str:
        while True:
            n = secrets.choice(range(60, 185))
            if (n + 16) % 3 == 0:
                n += 1
            payload = secrets.token_bytes(n)
            mac = hmac.new(self._secret, model.encode() + payload, hashlib.sha256).digest()[:16]
            sig = base64.b64encode(payload + mac).decode()
            if "+" in sig and "/" in sig:
                break
        if self.keep_log:  # validation is stateless (HMAC); the set is only for tests to inspect
            with self._cond:
                self.issued_signatures.add(sig)
        return sig

    def _signature_valid(self, sig: str, model: str) -> bool:
        if sig in self._spec_sigs:
            return True
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            return False
        if len(raw) < 17:
            return False
        mac = hmac.new(self._secret, model.encode() + raw[:-16], hashlib.sha256).digest()[:16]
        return hmac.compare_digest(mac, raw[-16:])

    def _check_signatures(self, req: dict, mi: ModelInfo, rec: dict) -> None:
        contents = req["contents"]
        for c in contents:
            for p in c["parts"]:
                if p.get("thoughtSignature") == DUMMY_SIGNATURE:
                    rec["used_dummy_signature"] = True
        if not mi.is3:
            return  # Gemini 2.x returns signatures but never checks them
        start = 0
        for i in range(len(contents) - 1, -1, -1):
            c = contents[i]
            if c.get("role", "user") == "user" and any("functionResponse" not in p for p in c["parts"]):
                start = i + 1
                break
        for i in range(start, len(contents)):
            c = contents[i]
            if c.get("role") != "model":
                continue
            first_call = next((p for p in c["parts"] if "functionCall" in p), None)
            if first_call is not None and not first_call.get("thoughtSignature"):
                raise Reject(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                    "to work correctly, and missing thought_signature may lead to degraded model performance. "
                    f"Additional data, function call `default_api:{first_call['functionCall'].get('name')}` , "
                    f"position {i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures "
                    "for more details.")
            for p in c["parts"]:
                sig = p.get("thoughtSignature")
                if sig and sig != DUMMY_SIGNATURE and not self._signature_valid(sig, mi.name):
                    raise Reject("Corrupted thought signature.")
