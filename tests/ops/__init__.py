"""Tests for :mod:`connector.ops`."""
