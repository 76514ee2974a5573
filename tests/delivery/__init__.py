"""Tests for :mod:`connector.delivery`."""
