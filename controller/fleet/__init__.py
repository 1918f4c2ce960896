"""Hosts: registry, presence, tags and targeting."""
