"""The LLM port on OpenAI chat completions with strict structured output (or any server
speaking that API at `base_url`)."""

from __future__ import annotations

import json
from typing import Any, Protocol

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import SecretStr

from handlers.core.ports import LLMError, LLMFailure
from handlers.drafting.prompts import Prompt

# Drafting waits on the model in a worker, not in front of a user's click, so it can
# afford a generous timeout; one retry absorbs a blip without doubling a real outage.
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 1


class OpenAIChatSettings(Protocol):
    """What the chat adapter reads from the application's settings (OPENAI_* variables)."""

    @property
    def openai_api_key(self) -> SecretStr | None: ...

    @property
    def openai_base_url(self) -> str | None: ...

    @property
    def openai_model(self) -> str: ...


class OpenAIChat:
    """Answers prompts with JSON matching their schema; every failure surfaces as LLMError."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.model = model
        # The client retries 429s (honouring Retry-After), 5xx and timeouts itself.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def from_settings(
        cls,
        settings: OpenAIChatSettings,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
    ) -> OpenAIChat:
        """The chat model configured by OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL."""
        if settings.openai_api_key is None:
            raise ValueError("OPENAI_API_KEY is not set")
        return cls(
            api_key=settings.openai_api_key.get_secret_value(),
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def complete_json(self, prompt: Prompt) -> dict[str, Any]:
        """The model's answer to `prompt` as a JSON object."""
        model = prompt.model or self.model
        messages: list[ChatCompletionMessageParam] = []
        for message in prompt.messages:
            if message.role == "system":
                messages.append({"role": "system", "content": message.content})
            else:
                messages.append({"role": "user", "content": message.content})
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": prompt.schema_name, "schema": prompt.schema, "strict": True},
        }
        try:
            response = await self._client.chat.completions.create(
                model=model,
                messages=messages,
                # max_tokens is refused by reasoning models; this one is accepted by all.
                max_completion_tokens=prompt.max_tokens,
                temperature=openai.omit if prompt.temperature is None else prompt.temperature,
                response_format=response_format,
            )
        except openai.RateLimitError as error:
            # An exhausted quota is also a 429, but waiting a few minutes will not fix it.
            quota = error.code == "insufficient_quota"
            reason: LLMFailure = "rejected" if quota else "rate_limited"
            raise LLMError(reason, _status(model, error)) from error
        except openai.APITimeoutError as error:
            raise LLMError("timeout", f"{model} did not answer in time") from error
        except openai.APIConnectionError as error:
            raise LLMError("unavailable", f"{model} unreachable: {error}") from error
        except openai.InternalServerError as error:
            raise LLMError("unavailable", _status(model, error)) from error
        except openai.APIStatusError as error:
            raise LLMError("rejected", _status(model, error)) from error
        except openai.OpenAIError as error:
            raise LLMError("unavailable", f"{model} failed: {type(error).__name__}") from error
        if not response.choices:
            raise LLMError("malformed", f"{model} answered no choices")
        choice = response.choices[0]
        if choice.message.refusal or choice.finish_reason == "content_filter":
            raise LLMError("refused", f"{model} refused ({choice.finish_reason})")
        if choice.finish_reason == "length":
            raise LLMError(
                "malformed", f"{model} was cut off at {prompt.max_tokens} tokens ({prompt.name})"
            )
        try:
            answer = json.loads(choice.message.content or "")
        except ValueError as error:
            raise LLMError("malformed", f"{model} answered invalid JSON ({prompt.name})") from error
        if not isinstance(answer, dict):
            raise LLMError("malformed", f"{model} answered {type(answer).__name__}, not an object")
        return answer

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()


def _status(model: str, error: openai.APIStatusError) -> str:
    # The code, not the message: a 401's message quotes part of the API key.
    return f"{model}: HTTP {error.status_code} {error.code or type(error).__name__}"
