"""Venue sources: the I/O drivers that feed frames through the pure venue parsers."""
