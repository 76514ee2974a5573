"""Venue adapters: pure parsing of frames into records, no I/O."""
