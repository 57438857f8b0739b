"""The terminal console: chat with Flywheel without Slack or Teams, on demo data.

`render` turns neutral messages and forms into terminal text, `sender` prints what the
outbox delivers, `session` is the chat loop (`flywheel console`), and `demo` seeds the
demo workspace a newcomer lands in.
"""
