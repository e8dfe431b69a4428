"""Renderers: one class per output format, all reading a `Report`."""
