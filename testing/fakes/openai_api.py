"""A fake OpenAI API: an aiohttp server that records every call and misbehaves on request.

The real `openai` client talks to it through `base_url` (`OPENAI_BASE_URL`). Embeddings
are deterministic: every word, after a synonym map, is hashed to a signed dimension, so
texts sharing words or synonyms are close and unrelated texts nearly orthogonal. Chat
completions check what the real API checks for strict structured output (a served model,
a closed schema with every property required) and answer an instance of the requested
schema whose texts echo the topic found in the prompt's `<request_data>` block. Each
endpoint is one handler in `_endpoints`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import math
import re
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

# Words the fake treats as meaning the same thing, so a profile can be close to a
# question in meaning while sharing none of its words.
SYNONYMS = {
    "kubernetes": "orchestration",
    "k8s": "orchestration",
    "orchestration": "orchestration",
    "upgrade": "patch",
    "upgrades": "patch",
    "upgrading": "patch",
    "patch": "patch",
    "patched": "patch",
    "patching": "patch",
    "downtime": "availability",
    "outage": "availability",
    "outages": "availability",
    "available": "availability",
    "availability": "availability",
}
_STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it of on or our the to we what with"
    " without you your topics published".split()
)
_WORD = re.compile(r"[a-z0-9]+")
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHAT = "chat/completions"
# Answers that break the contract of structured output, for `reply`.
MALFORMED_JSON = '{"title": "An answer cut short'

Handler = Callable[[dict[str, Any]], Awaitable[web.Response]]


@dataclass
class Call:
    endpoint: str  # "embeddings", "chat/completions", …
    body: dict[str, Any]
    api_key: str | None
    at: float


@dataclass
class Fault:
    status: int
    retry_after: float | None = None
    delay: float = 0.0
    # The error's code, when not the status's usual one (a 429 of "insufficient_quota").
    code: str | None = None
    # A slow answer rather than a failure: wait `delay`, then answer as usual.
    answer: bool = False
    # A 200 chat completion with this message content instead of the usual answer.
    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


@dataclass
class FakeOpenAI:
    """State of the fake: calls seen, models served, faults queued."""

    api_key: str = "sk-test-0123456789"
    # Embedding models served, with their dimensions.
    embedding_models: dict[str, int] = field(
        default_factory=lambda: {"text-embedding-3-small": 256}
    )
    synonyms: dict[str, str] = field(default_factory=lambda: dict(SYNONYMS))
    # Chat models served.
    chat_models: set[str] = field(default_factory=lambda: {"gpt-4o-mini"})
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    server: TestServer | None = None

    # -- set-up -------------------------------------------------------------------------
    def fail(
        self,
        endpoint: str = "embeddings",
        status: int = 500,
        *,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        code: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `endpoint` with an error `status`."""
        queue = self.faults.setdefault(endpoint, deque())
        queue.extend(Fault(status, retry_after, delay, code) for _ in range(times))

    def slow(self, endpoint: str = "embeddings", delay: float = 1.0, *, times: int = 1) -> None:
        """Answer the next `times` calls normally, but only after `delay` seconds."""
        queue = self.faults.setdefault(endpoint, deque())
        queue.extend(Fault(200, delay=delay, answer=True) for _ in range(times))

    def reply(
        self,
        content: str,
        *,
        times: int = 1,
        after: int = 0,
        finish_reason: str = "stop",
        refusal: str | None = None,
    ) -> None:
        """Answer `times` chat completions with this message content, as is, after
        answering the next `after` ones as usual."""
        queue = self.faults.setdefault(CHAT, deque())
        queue.extend(Fault(200, answer=True) for _ in range(after))
        queue.extend(
            Fault(200, content=content, finish_reason=finish_reason, refusal=refusal)
            for _ in range(times)
        )

    @property
    def url(self) -> str:
        """The base URL to give the client (`…/v1`)."""
        assert self.server is not None
        return str(self.server.make_url("/v1"))

    # -- inspection ---------------------------------------------------------------------
    def calls_to(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    def embedded(self) -> list[list[str]]:
        """The texts of each embeddings call, in order."""
        return [_inputs(c.body) for c in self.calls_to("embeddings")]

    def chats(self) -> list[dict[str, Any]]:
        """The body of each chat completion call, in order."""
        return [c.body for c in self.calls_to(CHAT)]

    def vector(self, text: str, dimensions: int = 256) -> list[float]:
        """The unit vector the fake answers for `text`."""
        values = [0.0] * dimensions
        for word in _WORD.findall(text.lower()):
            if word in _STOPWORDS:
                continue
            concept = self.synonyms.get(word, word)
            digest = hashlib.sha256(concept.encode()).digest()
            index = int.from_bytes(digest[:4], "little") % dimensions
            values[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in values))
        if norm == 0:
            values[0], norm = 1.0, 1.0
        return [v / norm for v in values]

    # -- the server ---------------------------------------------------------------------
    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/{endpoint:.+}", self._dispatch)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def _endpoints(self) -> dict[str, Handler]:
        return {"embeddings": self._embeddings, CHAT: self._chat}

    async def _dispatch(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        auth = request.headers.get("Authorization", "")
        api_key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self.calls.append(
            Call(endpoint, body if isinstance(body, dict) else {}, api_key, time.monotonic())
        )
        queue = self.faults.get(endpoint)
        fault = queue.popleft() if queue else None
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.content is not None or fault.refusal is not None:
                return _completion(
                    str((body or {}).get("model")),
                    fault.content,
                    fault.finish_reason,
                    fault.refusal,
                )
            if not fault.answer:
                return self._fault(fault)
        if api_key != self.api_key:
            # As the real API does, the message quotes the key, partly masked.
            shown = f"{api_key[:3]}{'*' * 8}{api_key[-4:]}" if api_key else "none"
            message = f"Incorrect API key provided: {shown}. You can find your API key online."
            return _error(401, message, "invalid_request_error", "invalid_api_key")
        handler = self._endpoints.get(endpoint)
        if handler is None:
            return _error(404, f"Unknown endpoint /v1/{endpoint}", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object.", "invalid_request_error")
        return await handler(body)

    @staticmethod
    def _fault(fault: Fault) -> web.Response:
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
        if fault.status == 429:
            body = {
                "error": {
                    "message": "Rate limit reached.",
                    "type": "requests",
                    "param": None,
                    "code": fault.code or "rate_limit_exceeded",
                }
            }
        else:
            body = {
                "error": {
                    "message": "The server had an error.",
                    "type": "server_error",
                    "param": None,
                    "code": fault.code,
                }
            }
        return web.json_response(body, status=fault.status, headers=headers)

    async def _chat(self, body: dict[str, Any]) -> web.Response:
        model = body.get("model")
        if model not in self.chat_models:
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict)
                and m.get("role") in ("system", "developer", "user", "assistant")
                and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            return _error(
                400, "'messages' must be a non-empty array of messages.", "invalid_request_error"
            )
        response_format = body.get("response_format")
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        if not isinstance(spec, dict) or response_format.get("type") != "json_schema":
            # Drafting always asks for structured output; anything else is a bug in the caller.
            return _error(
                400, "Expected response_format of type 'json_schema'.", "invalid_request_error"
            )
        name = spec.get("name")
        if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
            return _error(
                400,
                "Invalid 'response_format.json_schema.name': must match ^[a-zA-Z0-9_-]{1,64}$.",
                "invalid_request_error",
            )
        schema = spec.get("schema")
        problem = schema_error(schema) if spec.get("strict") is True else None
        if problem:
            return _error(
                400,
                f"Invalid schema for response_format '{name}': {problem}",
                "invalid_request_error",
                "invalid_json_schema",
            )
        data = request_data(body) or {}
        topic = str(data.get("topic") or "the request")
        assert isinstance(schema, dict)
        answer = instance(schema, topic)
        return _completion(str(model), json.dumps(answer))

    async def _embeddings(self, body: dict[str, Any]) -> web.Response:
        model = body.get("model")
        if model not in self.embedding_models:
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        raw = body.get("input")
        texts = _inputs(body)
        if not texts or len(texts) != (len(raw) if isinstance(raw, list) else 1):
            return _error(
                400,
                "'input' must be a non-empty string or array of strings.",
                "invalid_request_error",
            )
        if any(not text for text in texts) or len(texts) > 2048:
            return _error(
                400,
                "'input' items must be non-empty; at most 2048 of them.",
                "invalid_request_error",
            )
        dimensions = int(body.get("dimensions") or self.embedding_models[model])
        encoding = body.get("encoding_format", "float")
        data = []
        for i, text in enumerate(texts):
            vector = self.vector(text, dimensions)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if encoding == "base64"
                else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(len(text.split()) for text in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, str)]
    return []


# -- chat completions ---------------------------------------------------------------------


def request_data(body: dict[str, Any], tag: str = "request_data") -> dict[str, Any] | None:
    """The JSON between `<tag>` and `</tag>` in the call's user message, if there is one."""
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, str):
            continue
        match = re.search(rf"<{tag}>(.*?)</{tag}>", content, re.DOTALL)
        if match:
            try:
                value = json.loads(match.group(1))
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def schema_error(schema: Any, where: str = "") -> str | None:
    """Why the API would refuse `schema` in strict mode, in its own words; None if valid."""
    context = f"context=({where})" if where else "context=()"
    if not isinstance(schema, dict):
        return f"In {context}, schema must be a JSON Schema of 'type: \"object\"'."
    kind = schema.get("type")
    if not where and kind != "object":
        return "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{kind}\"'."
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return f"In {context}, 'properties' is required."
        if schema.get("additionalProperties") is not False:
            return (
                f"In {context}, 'additionalProperties' is required to be supplied and to be false."
            )
        required = schema.get("required")
        missing = [key for key in properties if key not in (required or [])]
        if missing:
            return (
                f"In {context}, 'required' is required to be supplied and to be an array"
                f" including every key in properties. Missing '{missing[0]}'."
            )
        for key, child in properties.items():
            problem = schema_error(
                child, f"{where}, 'properties', '{key}'" if where else f"'properties', '{key}'"
            )
            if problem:
                return problem
    elif kind == "array":
        if "items" not in schema:
            return f"In {context}, 'items' is required for arrays."
        return schema_error(schema["items"], f"{where}, 'items'")
    elif kind not in ("string", "number", "integer", "boolean", "null"):
        return f"In {context}, unknown type {kind!r}."
    return None


def instance(schema: dict[str, Any], topic: str, key: str = "answer") -> Any:
    """A deterministic value matching `schema`: texts name the key and echo the topic."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {k: instance(child, topic, k) for k, child in schema["properties"].items()}
    if kind == "array":
        low, high = int(schema.get("minItems", 1)), schema.get("maxItems")
        count = max(low, min(3, int(high) if high is not None else 3))
        singular = key.removesuffix("s")
        item = schema.get("items", {})
        if item.get("type") == "string":
            return [f"{singular.capitalize()} {i} on {topic}" for i in range(1, count + 1)]
        return [instance(item, topic, singular) for _ in range(count)]
    if kind == "string":
        return f"{key.replace('_', ' ').capitalize()} on {topic}"
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return None


_ids = itertools.count(1)


def _completion(
    model: str, content: str | None, finish_reason: str = "stop", refusal: str | None = None
) -> web.Response:
    text = content or ""
    return web.json_response(
        {
            "id": f"chatcmpl-fake{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": len(text.split()),
                "total_tokens": 100 + len(text.split()),
            },
        }
    )
