"""The public web: tracked-link redirects and the read-only pages of text-only posts."""

from adapters.web.links import ClickBuffer, Links

__all__ = ["ClickBuffer", "Links"]
