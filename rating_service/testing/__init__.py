"""Helpers for tests of rating-service and of the code that uses it.

Test dependencies only (the ``testing`` extra): nothing in the service
imports this package. ``rating_service.testing.stripe_server`` is a
Stripe-compatible server to run the real ``stripe`` SDK against.
"""
