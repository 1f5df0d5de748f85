"""Composition root: the `custodian` command line and the wiring of a site."""
