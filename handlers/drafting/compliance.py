"""Compliance checks a draft must pass before any reviewer sees it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_LINK = re.compile(r"(?:https?://|www\.)[^\s<>()\"']+", re.I)


@dataclass(frozen=True, slots=True)
class Rules:
    """A workspace's rules; empty values mean no rule."""

    banned_phrases: tuple[str, ...] = ()
    required_disclosure: str = ""
    max_length: int | None = None
    allowed_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Content:
    title: str
    body: str
    canonical_url: str | None
    captions: tuple[str, ...]


def links(text: str) -> list[str]:
    """The web links in a text, as written."""
    return [match.rstrip(".,;:!?") for match in _LINK.findall(text)]


def host_of(link: str) -> str:
    parsed = urlsplit(link if "://" in link else f"https://{link}")
    return (parsed.hostname or "").lower()


def allowed(host: str, domains: Iterable[str]) -> bool:
    """A host is allowed when it is one of the domains or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def check(content: Content, rules: Rules) -> list[str]:
    """Every rule the content breaks, as sentences the author can act on; empty when it passes."""
    failures: list[str] = []
    texts = [content.title, content.body, *content.captions]
    everything = "\n".join(texts).lower()
    for phrase in rules.banned_phrases:
        if phrase.strip() and phrase.strip().lower() in everything:
            failures.append(
                f"Remove the phrase “{phrase.strip()}”: it is not allowed in published content."
            )
    if (
        rules.required_disclosure.strip()
        and rules.required_disclosure.strip().lower() not in content.body.lower()
    ):
        failures.append(
            f"Add the required disclosure line to the body: “{rules.required_disclosure.strip()}”."
        )
    length = len(content.title) + len(content.body)
    if rules.max_length is not None and length > rules.max_length:
        failures.append(
            f"Shorten it: title and body are {length} characters, "
            f"the limit here is {rules.max_length}."
        )
    if rules.allowed_domains:
        domains = [d.lower().lstrip(".") for d in rules.allowed_domains]
        found = [
            *links("\n".join(texts)),
            *([content.canonical_url] if content.canonical_url else []),
        ]
        refused = sorted({host_of(link) for link in found if not allowed(host_of(link), domains)})
        if refused:
            failures.append(
                f"Links may only point to {', '.join(domains)}; "
                f"remove or replace the links to {', '.join(refused)}."
            )
    return failures
