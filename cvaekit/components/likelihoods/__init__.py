"""Likelihoods p(x | z, c): what a decoder's output means (`model.likelihood`)."""
