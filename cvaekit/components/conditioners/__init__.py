"""Conditioners: the raw conditions of a batch (label ids or caption strings) -> a vector or tokens."""
