"""Typed async client for rating.v1.RatingService."""
