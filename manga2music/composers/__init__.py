"""Composers: the music side.  Each turns music descriptions into audio."""
