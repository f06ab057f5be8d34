"""Containers: how members, the index and commits are laid out in a coffer file."""
