"""Venue simulators that speak the real wire protocols, for tests and ``connector dev``."""
