"""Developer tools: checks run by the ``lint`` session, never shipped in the wheel."""
