"""Loopback simulators of the host product and the accounting tools (WSGI apps served by werkzeug)."""
