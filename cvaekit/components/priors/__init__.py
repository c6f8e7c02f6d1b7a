"""Priors p(z | c): the distribution samples come from."""
