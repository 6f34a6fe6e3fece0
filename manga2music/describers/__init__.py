"""Describers: the vision side.  Each turns a section's pages into a music description."""
