"""The Embedder port on the OpenAI embeddings API (or any server speaking it at `base_url`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import openai
from pydantic import SecretStr

from handlers.core.ports import EmbeddingError

# OpenAI accepts up to 2,048 inputs per request and 300,000 tokens in all; profiles are a
# few hundred tokens, so this keeps requests well inside both.
BATCH_SIZE = 256


class OpenAISettings(Protocol):
    """What the embedder reads from the application's settings (OPENAI_* variables)."""

    @property
    def openai_api_key(self) -> SecretStr | None: ...

    @property
    def openai_base_url(self) -> str | None: ...

    @property
    def openai_embedding_model(self) -> str: ...


class OpenAIEmbedder:
    """Embeds texts with one model; every failure surfaces as EmbeddingError."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self._batch_size = batch_size
        # The client retries 429s (honouring Retry-After), 5xx and timeouts itself.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def from_settings(
        cls, settings: OpenAISettings, *, timeout: float = 10.0, max_retries: int = 2
    ) -> OpenAIEmbedder:
        """The embedder configured by OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_EMBEDDING_MODEL."""
        if settings.openai_api_key is None:
            raise ValueError("OPENAI_API_KEY is not set")
        return cls(
            api_key=settings.openai_api_key.get_secret_value(),
            model=settings.openai_embedding_model,
            base_url=settings.openai_base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, in as few requests as the batch size allows."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            try:
                response = await self._client.embeddings.create(model=self.model, input=batch)
            except openai.APIStatusError as error:
                # The code, not the message: a 401's message quotes part of the API key.
                raise EmbeddingError(
                    f"OpenAI embeddings with {self.model} failed: HTTP {error.status_code}"
                    f" {error.code or type(error).__name__}"
                ) from error
            except openai.APITimeoutError as error:
                raise EmbeddingError("OpenAI embeddings timed out") from error
            except openai.OpenAIError as error:
                raise EmbeddingError(f"OpenAI embeddings failed: {error}") from error
            data = sorted(response.data, key=lambda item: item.index)
            if [item.index for item in data] != list(range(len(batch))):
                raise EmbeddingError(
                    f"OpenAI embeddings answered {len(data)} vectors for {len(batch)} texts"
                )
            vectors += [list(item.embedding) for item in data]
        return vectors

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()
