"""Charts drawn for the digests. Import a renderer module only when drawing: matplotlib is
heavy, and the serve path must start without it."""
