"""Tests for the venue simulators."""
