"""What a new workspace still needs before the loop runs on its own, as admins see it."""

from __future__ import annotations

from handlers.core import actions, workspace_settings
from handlers.core.messages import Block, Button, Buttons, ContextLine, Section
from storage.models import Workspace


def missing(workspace: Workspace) -> list[str]:
    """The settings still to choose, in the order they matter; empty when set up."""
    stored = workspace.settings or {}
    settings = workspace_settings.load(workspace)
    gaps: list[str] = []
    if not settings.reviewers:
        gaps.append("Reviewers: nobody approves drafts yet, so nothing can be shared")
    if not settings.review_channel:
        gaps.append("Review channel: drafts go to reviewers one by one until you pick one")
    if not settings.share_channels:
        gaps.append("Share channels: where approved posts are announced")
    if not settings.digest_channels:
        gaps.append("Digest channels: where the weekly digest is posted")
    if "timezone" not in stored:
        gaps.append("Time zone: digests and quiet hours follow UTC until you choose one")
    return gaps


def checklist(workspace: Workspace, *, with_button: bool) -> list[Block]:
    """The setup checklist, or nothing once the workspace is set up."""
    gaps = missing(workspace)
    if not gaps:
        return []
    blocks: list[Block] = [
        Section(text=f"*Setup: {5 - len(gaps)} of 5 done.* Still missing:"),
        Section(text="\n".join(f"• {gap}" for gap in gaps)),
    ]
    if with_button:
        blocks.append(
            Buttons(
                buttons=(Button(label="Open settings", action=actions.ADMIN_OPEN, style="primary"),)
            )
        )
    else:
        blocks.append(ContextLine(text="This list shows here until everything is set."))
    return blocks
