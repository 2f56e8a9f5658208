"""Malaria: a small CNN that tells parasitized blood cells from uninfected ones."""
