"""The program page end to end over HTTP: Sign in with Slack (and Microsoft) through the fake
OpenID provider, the funnel and its period, the other pages, CSV downloads, who may see what,
and every bad sign-in refused with a clear page and no session — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from sqlmodel import select

from handlers.impact.clicks import click_totals
from handlers.impact.query import Period
from storage.db import transaction
from storage.models import Member, Post, SigninState
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.program_http import TENANT, Site, program_site, session_cookie_set, table_rows
from tests.test_digest_figures import at


@pytest.fixture
async def site(migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock) -> AsyncIterator[Site]:
    async with program_site(migrated_url, fake_slack, clock) as s:
        yield s


def funnel(html: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table_rows(html, "funnel")}


async def test_an_admin_signs_in_with_slack_and_sees_the_funnel(site: Site) -> None:
    status, home = await site.page("/")
    assert status == 200 and "Sign in with Slack" in home and "Sign in with Microsoft" in home

    response = await site.sign_in("UADMIN")
    assert response.status == 303 and response.headers["Location"] == "/program"
    [cookie] = [
        h for h in response.headers.getall("Set-Cookie") if h.startswith("flywheel_session=")
    ]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age=28800" in cookie and "Secure" not in cookie  # the base URL is http here

    page = await site.client.get("/program?weeks=4")
    html = await page.text()
    assert page.status == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert "<script" not in html and "<style" not in html and 'style="' not in html
    rows = funnel(html)
    assert rows["Requests"] == ["5", "0", "new"]
    assert rows["+1s on requests"] == ["1", "0", "new"]
    assert rows["Requests claimed by an expert"] == ["3", "0", "new"]
    assert rows["Published from requests"] == ["3", "0", "new"]
    assert rows["Published from other content"] == ["0", "0", "no change"]
    assert rows["Share buttons pressed (intents)"] == ["5", "0", "new"]
    assert rows["Shares confirmed by a click"] == ["4", "0", "new"]
    assert rows["Wins"] == ["2", "0", "new"]
    # A click is what the digests count: the same read model, the same number.
    async with site.flywheel.sessions() as session:
        [clicks] = await click_totals(
            session, site.ids["workspace"], [Period(at(2, 23), at(30, 23))]
        )
    assert rows["Clicks (people only)"] == [str(clicks), "0", "new"] and clicks == 14
    assert "Last 4 weeks (03 Nov 2026 – 30 Nov 2026)" in html


async def test_the_period_can_be_chosen_and_compared_with_the_one_before(site: Site) -> None:
    await site.sign_in("UADMIN")
    status, html = await site.page("/program?from=2026-11-23&to=2026-11-29")
    assert status == 200
    rows = funnel(html)
    # 23–29 Nov against 16–22 Nov (Paris): R2 and R3 against R1 and R4 (22 Nov, 23:30).
    assert rows["Requests"] == ["2", "2", "no change"]
    assert rows["Published from requests"] == ["2", "1", "+100%"]
    assert rows["Wins"] == ["2", "0", "new"]
    assert 'value="2026-11-23"' in html and "23 Nov 2026 – 29 Nov 2026" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-11-29&to=2026-11-01", "The start date (2026-11-29) is after the end date"),
        ("from=2026-13-01&to=2026-12-01", "The start date “2026-13-01” is not a date"),
        ("from=yesterday&to=2026-12-01", "is not a date: write it as YYYY-MM-DD"),
        ("from=2020-01-01&to=2026-11-29", "A period can be at most 5 years long"),
        ("from=2026-11-01", "Give both a start and an end date"),
        ("weeks=5", "Choose 4, 12, 26 or 52 weeks."),
        ("weeks=-4", "Choose 4, 12, 26 or 52 weeks."),
    ],
)
async def test_a_bad_period_gets_a_clear_message_and_no_figures(
    site: Site, query: str, message: str
) -> None:
    await site.sign_in("UADMIN")
    for path in ("/program", "/program/trends", "/program/content"):
        status, html = await site.page(f"{path}?{query}")
        assert status == 400 and message in html.replace("&amp;", "&")
        assert 'role="alert"' in html and "<table" not in html
    response = await site.client.get(f"/program/overview.csv?table=funnel&{query}")
    assert response.status == 400 and message in await response.text()


async def test_every_page_renders_its_figures(site: Site) -> None:
    await site.sign_in("UADMIN")
    status, html = await site.page("/program/trends?weeks=4")
    assert status == 200
    assert html.count("<svg") == 5 and '<title id="chart-clicks-title">Clicks</title>' in html
    assert 'aria-labelledby="chart-clicks-title chart-clicks-desc"' in html
    weekly = table_rows(html, "weekly")
    assert [r[0] for r in weekly] == ["2026-11-03", "2026-11-10", "2026-11-17", "2026-11-24"]
    assert sum(int(r[3]) for r in weekly) == 14  # clicks
    assert '<th scope="col" class="n">Participants</th>' in html

    status, html = await site.page("/program/demand?weeks=4")
    assert status == 200
    waiting = {r[0]: r[1:] for r in table_rows(html, "waiting")}
    assert waiting["Under a week"] == ["1", "0", "1"]  # R2, asked on the 23rd, one +1
    assert waiting["2–4 weeks"] == ["0", "1", "0"]  # R5, declined on the 10th
    timing = {r[0]: r[1:] for r in table_rows(html, "timing")}
    assert timing["First claim"][0] == "3" and timing["Publication"][0] == "3"
    assert [r[0] for r in table_rows(html, "requests")] == ["Topic R2", "Topic R5"]

    status, html = await site.page("/program/content?weeks=4&sort=clicks")
    posts = table_rows(html, "posts")
    assert [r[0] for r in posts] == ["Post P2", "Post P1", "Post P3"]
    assert posts[0][4:] == [
        "1",
        "1",
        "0",
        "2",
        "9",
        "1",
    ]  # LinkedIn, X, email, shares, clicks, wins
    status, html = await site.page("/program/content?weeks=4&sort=title")
    assert [r[0] for r in table_rows(html, "posts")] == ["Post P1", "Post P2", "Post P3"]
    status, html = await site.page("/program/content?weeks=4&sort=evil")
    assert status == 400 and "Sort by clicks, shares, wins, published, title." in html

    status, html = await site.page("/program/people?weeks=4")
    sharers = table_rows(html, "sharers")
    assert sharers[0][:3] == ["Dan", "3", "8"]
    assert 'href="/program/people/UDAN"' in html
    assert [r[0] for r in table_rows(html, "requesters")][:1] == ["Alice"]

    status, html = await site.page("/program/people/UBOB?weeks=4")
    assert status == 200
    summary = {r[0]: r[1] for r in table_rows(html, "summary")}
    assert summary["Posts I published"] == "2" and summary["Clicks on my posts"] == "5"
    assert sorted(r[0] for r in table_rows(html, "posts")) == ["Post P1", "Post P3"]
    assert "No request of mine moved in this period." in html  # Bob asked for nothing


async def test_csv_downloads_open_cleanly_in_a_spreadsheet(site: Site) -> None:
    async with transaction(site.flywheel.sessions) as session:
        post = await session.get(Post, site.ids["P2"])
        assert post is not None
        post.title = '=HYPERLINK("http://evil.test","Click")'
        session.add(post)
    await site.sign_in("UADMIN")
    response = await site.client.get("/program/overview.csv?weeks=4&table=funnel")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="flywheel-overview-funnel-2026-11-03-to-2026-11-30.csv"'
    )
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Stage", "This period", "Period before", "Change"]
    assert rows[1] == ["Requests", "5", "0", "new"]
    assert ["+1s on requests", "1", "0", "new"] not in rows
    assert ["'+1s on requests", "1", "0", "new"] in rows  # a leading + is neutralised

    content = await site.client.get("/program/content.csv?weeks=4&table=posts&sort=clicks")
    rows = list(csv.reader(io.StringIO((await content.read()).decode("utf-8-sig"))))
    assert rows[1][0] == "'" + '=HYPERLINK("http://evil.test","Click")'
    assert rows[1][2] == "2026-11-26"  # ISO dates

    unknown = await site.client.get("/program/overview.csv?weeks=4&table=nope")
    assert unknown.status == 404 and "choose one of funnel" in await unknown.text()
    mine = await site.client.get("/program/people/UADMIN.csv?weeks=4&table=summary")
    assert mine.status == 200


async def test_members_see_their_own_page_and_nothing_else(site: Site) -> None:
    response = await site.sign_in("UALICE")
    assert response.status == 303 and response.headers["Location"] == "/program/people/UALICE"
    status, html = await site.page("/program/people/UALICE?weeks=4")
    assert status == 200 and "My page" in html
    requests = table_rows(html, "requests")
    assert sorted(r[0] for r in requests) == ["Topic R1", "Topic R2", "Topic R4"]
    for path in ("/program", "/program/trends", "/program/people", "/program/people/UBOB"):
        status, html = await site.page(path)
        assert status == 403 and "<table" not in html, path
    for path in ("/program/overview.csv?table=funnel", "/program/people/UBOB.csv?table=summary"):
        assert (await site.client.get(path)).status == 403


async def test_reviewers_see_the_workspace(site: Site) -> None:
    response = await site.sign_in("UBOB")  # a reviewer in the workspace's settings
    assert response.headers["Location"] == "/program"
    status, _ = await site.page("/program/people/UALICE")
    assert status == 200


async def test_another_workspace_sees_nothing_of_this_one(site: Site) -> None:
    response = await site.sign_in("UZED", team="T0002")
    assert response.headers["Location"] == "/program"
    status, html = await site.page("/program?weeks=4")
    assert status == 200 and funnel(html)["Requests"] == ["0", "0", "no change"]
    for path in ("/program/people/UALICE", "/program/people/UADMIN?weeks=4"):
        status, html = await site.page(path)
        assert status == 404 and "Alice" not in html
    assert (await site.client.get("/program/people/UALICE.csv?table=summary")).status == 404
    status, html = await site.page("/program/content?weeks=4")
    assert "Post P1" not in html


async def test_a_workspace_flywheel_does_not_serve_is_refused(site: Site) -> None:
    response = await site.sign_in("UNEW", team="T9999")
    assert response.status == 400 and not session_cookie_set(response)
    assert "Flywheel is not set up in that Slack workspace" in await response.text()


async def test_a_first_sign_in_makes_the_person_a_member(site: Site) -> None:
    response = await site.sign_in("UNEWCOMER")
    assert response.headers["Location"] == "/program/people/UNEWCOMER"
    async with site.flywheel.sessions() as session:
        member = (await session.exec(select(Member).where(Member.user_id == "UNEWCOMER"))).one()
    assert member.email == "unewcomer@acme.test" and member.workspace_id == site.ids["workspace"]


async def refused(site: Site, path: str) -> str:
    response = await site.callback(path)
    html = await response.text()
    assert response.status == 400 and "Sign-in refused" in html
    assert not session_cookie_set(response) and not site.signed_in()
    assert (await site.client.get("/program", allow_redirects=False)).status == 303
    return html


async def test_a_forged_state_is_refused(site: Site) -> None:
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    back = await site.consent(await site.start_signin())
    forged = back.split("state=")[0] + "state=" + "A" * 43
    kept = {c.key: c.value for c in site.client.session.cookie_jar}
    assert "not started in this browser" in await refused(site, forged)
    site.client.session.cookie_jar.update_cookies(kept)
    # The state the browser holds, but kept by nobody: a forged cookie state is refused too.
    async with transaction(site.flywheel.sessions) as session:
        for row in (await session.exec(select(SigninState))).all():
            await session.delete(row)
    assert "not one we made, or it was already used" in await refused(site, back)


async def test_a_reused_callback_in_the_same_browser_is_refused(site: Site) -> None:
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    authorize = await site.start_signin()
    back = await site.consent(authorize)
    # The state cookie is kept by hand, as an attacker replaying the request would.
    cookies = {c.key: c.value for c in site.client.session.cookie_jar}
    assert (await site.callback(back)).status == 303
    site.client.session.cookie_jar.clear()
    site.client.session.cookie_jar.update_cookies({"flywheel_signin": cookies["flywheel_signin"]})
    assert "already used" in await refused(site, back)


async def test_an_expired_state_is_refused(site: Site) -> None:
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    back = await site.consent(await site.start_signin())
    site.clock.advance(minutes=11)
    assert "took too long and expired" in await refused(site, back)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ({"nonce": "someone-elses-nonce"}, "does not belong to this attempt"),
        ({"aud": "another-app"}, "meant for another application"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "The sign-in has expired"),
        ({"iss": "https://evil.test"}, "unexpected issuer"),
        ({"https://slack.com/team_id": None}, "did not say which workspace"),
    ],
)
async def test_a_spoilt_id_token_is_refused(
    site: Site, spoil: dict[str, object], message: str
) -> None:
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    site.oidc.spoil = spoil
    back = await site.consent(await site.start_signin())
    assert message in await refused(site, back)


async def test_an_id_token_signed_by_another_key_is_refused(site: Site) -> None:
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    site.oidc.foreign_key = True
    back = await site.consent(await site.start_signin())
    assert "signature does not check out" in await refused(site, back)


async def test_a_refused_code_and_a_cancelled_sign_in_are_refused(site: Site) -> None:
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    back = await site.consent(await site.start_signin())
    site.oidc.codes.clear()  # the code was already spent at the provider
    assert "Slack refused the sign-in" in await refused(site, back)
    await site.start_signin()
    response = await site.callback("/signin/slack/callback?error=access_denied&state=x")
    assert response.status == 400 and "cancelled or refused" in await response.text()


async def test_signing_out_needs_the_csrf_token(site: Site) -> None:
    await site.sign_in("UADMIN")
    _, html = await site.page("/program")
    token = html.split('name="csrf" value="')[1].split('"')[0]
    forged = await site.client.post("/signout", data={"csrf": "nope"}, allow_redirects=False)
    assert forged.status == 403 and site.signed_in()
    assert (await site.page("/program"))[0] == 200
    out = await site.client.post("/signout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    response = await site.client.get("/program", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/?next=")


async def test_a_tampered_or_expired_session_is_not_a_session(site: Site) -> None:
    await site.sign_in("UADMIN")
    [cookie] = [c for c in site.client.session.cookie_jar if c.key == "flywheel_session"]
    value = cookie.value
    site.client.session.cookie_jar.clear()
    site.client.session.cookie_jar.update_cookies({"flywheel_session": value[:-2] + "xx"})
    assert (await site.client.get("/program", allow_redirects=False)).status == 303


async def test_the_next_page_is_kept_through_sign_in_and_never_leaves_the_site(site: Site) -> None:
    response = await site.client.get("/program/demand?weeks=4", allow_redirects=False)
    location = response.headers["Location"]
    assert parse_qs(location.split("?")[1]) == {"next": ["/program/demand?weeks=4"]}
    _, home = await site.page(location)
    assert 'href="/signin/slack?next=%2Fprogram%2Fdemand%3Fweeks%3D4"' in home
    start = await site.client.get(
        "/signin/slack?next=/program/demand%3Fweeks%3D4", allow_redirects=False
    )
    site.oidc.sign_in_as_slack("T0001", "UADMIN")
    back = await site.consent(start.headers["Location"])
    assert (await site.callback(back)).headers["Location"] == "/program/demand?weeks=4"
    site.client.session.cookie_jar.clear()
    start = await site.client.get("/signin/slack?next=//evil.test/x", allow_redirects=False)
    back = await site.consent(start.headers["Location"])
    assert (await site.callback(back)).headers["Location"] == "/program"


async def test_microsoft_sign_in_maps_tenant_and_object_id_to_the_teams_member(site: Site) -> None:
    site.oidc.sign_in_as_microsoft(TENANT, "aad-object-admin", email="tess@acme.test")
    authorize = await site.start_signin("microsoft")
    assert "/organizations/oauth2/v2.0/authorize?" in authorize
    response = await site.callback(await site.consent(authorize))
    assert response.status == 303 and response.headers["Location"] == "/program"
    status, html = await site.page("/program")
    assert status == 200 and "Acme Teams" in html
    site.client.session.cookie_jar.clear()
    site.oidc.sign_in_as_microsoft(TENANT, "aad-object-admin")
    site.oidc.spoil = {"iss": "https://login.test/another-tenant/v2.0"}
    back = await site.consent(await site.start_signin("microsoft"))
    assert "unexpected issuer" in await refused(site, back)


async def test_without_sign_in_settings_the_page_says_so(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    async with program_site(
        migrated_url,
        fake_slack,
        clock,
        slack_client_id=None,
        slack_client_secret=None,
        microsoft_signin_client_id=None,
        microsoft_signin_client_secret=None,
    ) as bare:
        status, html = await bare.page("/")
        assert status == 200 and "Sign-in is not set up" in html
        assert (await bare.client.get("/signin/slack")).status == 404
        css = await bare.client.get("/program/static/program.css")
        assert css.status == 200 and css.content_type == "text/css"


async def test_sessions_expire(site: Site) -> None:
    await site.sign_in("UADMIN")
    assert site.flywheel.program is not None
    [cookie] = [c for c in site.client.session.cookie_jar if c.key == "flywheel_session"]
    assert int(cookie["max-age"]) == int(timedelta(hours=8).total_seconds())


async def test_sessions_are_secure_cookies_behind_https(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    async with program_site(
        migrated_url, fake_slack, clock, public_base_url="https://flywheel.test"
    ) as secure:
        start = await secure.client.get("/signin/slack", allow_redirects=False)
        authorize = start.headers["Location"]
        assert "redirect_uri=https%3A%2F%2Fflywheel.test%2Fsignin%2Fslack%2Fcallback" in authorize
        state_cookie = start.cookies["flywheel_signin"]
        assert state_cookie["secure"] and state_cookie["httponly"]
        secure.oidc.sign_in_as_slack("T0001", "UADMIN")
        # A browser sends a Secure cookie back over https only: the test client is on http.
        response = await secure.client.get(
            await secure.consent(authorize),
            headers={"Cookie": f"flywheel_signin={state_cookie.value}"},
            allow_redirects=False,
        )
        assert response.status == 303
        [cookie] = [
            h for h in response.headers.getall("Set-Cookie") if h.startswith("flywheel_session=")
        ]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
