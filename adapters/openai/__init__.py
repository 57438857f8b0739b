"""OpenAI: the embeddings and the drafting model behind the handlers' ports."""

from adapters.openai.chat import OpenAIChat
from adapters.openai.embeddings import OpenAIEmbedder

__all__ = ["OpenAIChat", "OpenAIEmbedder"]
