"""Domain exceptions. Handlers raise them; the router turns them into a polite reply."""

from __future__ import annotations

# What a person is told when something unexpected failed, by every adapter alike: the
# cause goes to the log, never to the chat.
APOLOGY = "Sorry — something went wrong on my side. Please try again in a moment."


class DomainError(Exception):
    """Something the user asked for cannot happen; the message says why, kindly."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(DomainError):
    """The actor lacks the role or relation the action needs."""


class NotFound(DomainError):
    """The thing acted on does not exist in this workspace."""


class InvalidTransition(DomainError):
    """The request is not in a state that allows this."""


class FormInvalid(DomainError):
    """Form values that fail validation, by field name; nothing was written."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
