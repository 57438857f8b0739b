"""The use cases. Nothing here knows which chat platform spoke."""
