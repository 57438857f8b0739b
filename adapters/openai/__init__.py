"""OpenAI: the embeddings (and, later, drafting) behind the handlers' ports."""

from adapters.openai.embeddings import OpenAIEmbedder

__all__ = ["OpenAIEmbedder"]
