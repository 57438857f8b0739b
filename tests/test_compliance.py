"""Compliance checks: what fails is said exactly, before any reviewer sees the draft."""

from __future__ import annotations

from handlers.drafting.compliance import Content, Rules, check, links

DRAFT = Content(
    title="Zero-downtime Oracle to PostgreSQL",
    body="We moved Globex without downtime. "
    "Details: https://blog.acme.com/zdm and www.rival.io/x.\nI work at Acme.",
    canonical_url="https://acme.com/blog/zdm",
    captions=("Read how we did it", "Guaranteed results, every time"),
)


def test_no_rules_no_failures() -> None:
    assert check(DRAFT, Rules()) == []


def test_each_rule_is_reported_with_what_to_do() -> None:
    rules = Rules(
        banned_phrases=("guaranteed results", "best in class"),
        required_disclosure="Opinions are my own.",
        max_length=100,
        allowed_domains=("acme.com",),
    )
    failures = check(DRAFT, rules)
    assert failures == [
        "Remove the phrase “guaranteed results”: it is not allowed in published content.",
        "Add the required disclosure line to the body: “Opinions are my own.”.",
        f"Shorten it: title and body are {len(DRAFT.title) + len(DRAFT.body)} characters, "
        "the limit here is 100.",
        "Links may only point to acme.com; remove or replace the links to www.rival.io.",
    ]


def test_subdomains_of_allowed_domains_pass_and_lookalikes_do_not() -> None:
    rules = Rules(allowed_domains=("acme.com",))
    ok = Content("t", "see https://blog.acme.com/a and https://acme.com", None, ())
    evil = Content("t", "see https://acme.com.evil.io/a and https://notacme.com", None, ())
    assert check(ok, rules) == []
    assert "acme.com.evil.io, notacme.com" in check(evil, rules)[0]


def test_links_are_found_without_trailing_punctuation() -> None:
    assert links("Go to https://acme.com/x, then www.acme.com.") == [
        "https://acme.com/x",
        "www.acme.com",
    ]
