"""Keep the SDK's per-submit noise out of the logs, and only that.

Teams sends `channelData.source` and `channelData.legacy` with every Action.Submit and
task module submit; msrest's deserializer logs a WARNING for each field the schema's
`TeamsChannelData` does not declare. Nothing is wrong and nothing can be done about it,
so those lines, and no others, are dropped.
"""

from __future__ import annotations

import logging

from botbuilder.schema.teams import TeamsChannelData

MSREST_LOGGER = "msrest.serialization"
UNKNOWN_ATTRIBUTE = "%s is not a known attribute of class %s and will be ignored"


class UnknownChannelDataFields(logging.Filter):
    """Drops msrest's "not a known attribute" warning for Teams' channel data only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            record.msg == UNKNOWN_ATTRIBUTE
            and isinstance(args, tuple)
            and len(args) == 2
            and args[1] is TeamsChannelData
        )


def install() -> None:
    """Attach the filter to msrest's serializer logger, once."""
    logger = logging.getLogger(MSREST_LOGGER)
    if not any(isinstance(f, UnknownChannelDataFields) for f in logger.filters):
        logger.addFilter(UnknownChannelDataFields())
