"""Tests of connector.readers."""
