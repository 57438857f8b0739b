"""What every flow uses: the router, the message model, the unit of work, members, errors,
the request lifecycle, wording, quiet hours and workspace settings."""
