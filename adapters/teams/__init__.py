"""Microsoft Teams: Bot Framework activities in, Adaptive Cards out, the outbox sender."""
