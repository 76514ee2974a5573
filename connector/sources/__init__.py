"""Venue sources: the I/O drivers (sockets, REST, backoff) feeding frames to the venue parsers."""
