"""Background loops that act on experiments."""
