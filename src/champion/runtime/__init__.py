"""Runs deployed versions in worker processes. Only this layer loads user code."""
