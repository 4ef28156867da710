"""Ingest: turn files into clean text and chunks."""
