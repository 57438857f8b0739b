"""Every action id, in one place: the names buttons carry and the router maps to handlers.

They are the platform-neutral vocabulary of CONTRACT.md (Slack `action_id`, Teams
`Action.Submit` data `{"action": …}`); a test checks that every button's action is
registered and every registered action is here.
"""

from __future__ import annotations

from typing import Final

REQUEST_OPEN: Final = "request_open"
REQUEST_VOTE: Final = "request_vote"
REQUEST_CLAIM: Final = "request_claim"
REQUEST_SUGGEST: Final = "request_suggest"
REQUEST_DECLINE: Final = "request_decline"
# An expert takes a request nobody asked them about (home tab, offers on saving a profile).
REQUEST_TAKE: Final = "request_take"
# A requester names a colleague who could become the expert nobody is yet.
REQUEST_NOMINATE: Final = "request_nominate"
EXPERT_OPEN: Final = "expert_open"
ADMIN_OPEN: Final = "admin_open"
DRAFT_OPEN: Final = "draft_open"
DRAFT_AI: Final = "draft_ai"
DRAFT_SUBMIT: Final = "draft_submit"
REVIEW_APPROVE: Final = "review_approve"
REVIEW_CHANGES: Final = "review_changes"
REVIEW_REJECT: Final = "review_reject"
SHARE_POST: Final = "share_post"
SHARE_PREFS: Final = "share_prefs"
SHARE_LINKEDIN: Final = "share_linkedin"
SHARE_X: Final = "share_x"
SHARE_EMAIL: Final = "share_email"
WIN_LOG: Final = "win_log"
DIGEST_CLAIM: Final = "digest_claim"
NOTES_TOGGLE: Final = "notes_toggle"
LINKEDIN_CONNECT: Final = "linkedin_connect"
LINKEDIN_OPEN: Final = "linkedin_open"
LINKEDIN_DISCONNECT: Final = "linkedin_disconnect"
LINKEDIN_POST: Final = "linkedin_post"
LINKEDIN_CANCEL: Final = "linkedin_cancel"
LINK_EDIT: Final = "link_edit"
LINK_CANCEL: Final = "link_cancel"
LINK_APPROVE: Final = "link_approve"
LINK_APPROVE_UNTIL: Final = "link_approve_until"
LINK_REJECT: Final = "link_reject"
FEED_ADD: Final = "feed_add"
FEED_PAUSE: Final = "feed_pause"
FEED_RESUME: Final = "feed_resume"
FEED_REMOVE: Final = "feed_remove"
FEED_TRY: Final = "feed_try"
FEED_REMOVE_CONFIRM: Final = "feed_remove_confirm"

# The share buttons, by network.
SHARE: Final = {"linkedin": SHARE_LINKEDIN, "x": SHARE_X, "email": SHARE_EMAIL}

ALL: Final = frozenset(
    {
        REQUEST_OPEN,
        REQUEST_VOTE,
        REQUEST_CLAIM,
        REQUEST_SUGGEST,
        REQUEST_DECLINE,
        REQUEST_TAKE,
        REQUEST_NOMINATE,
        EXPERT_OPEN,
        ADMIN_OPEN,
        DRAFT_OPEN,
        DRAFT_AI,
        DRAFT_SUBMIT,
        REVIEW_APPROVE,
        REVIEW_CHANGES,
        REVIEW_REJECT,
        SHARE_POST,
        SHARE_PREFS,
        *SHARE.values(),
        WIN_LOG,
        DIGEST_CLAIM,
        NOTES_TOGGLE,
        LINKEDIN_CONNECT,
        LINKEDIN_OPEN,
        LINKEDIN_DISCONNECT,
        LINKEDIN_POST,
        LINKEDIN_CANCEL,
        LINK_EDIT,
        LINK_CANCEL,
        LINK_APPROVE,
        LINK_APPROVE_UNTIL,
        LINK_REJECT,
        FEED_ADD,
        FEED_PAUSE,
        FEED_RESUME,
        FEED_REMOVE,
        FEED_REMOVE_CONFIRM,
        FEED_TRY,
    }
)
