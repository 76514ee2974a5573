"""Tests for :mod:`connector.governance`."""
