"""Profiles family: identity resolution, profile edits, consent, tags, points, 360° view."""
