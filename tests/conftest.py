"""Shared test set-up: quiet moto's interpreter logs (it logs every caught state failure in full)."""

import logging

logging.getLogger("moto").setLevel(logging.CRITICAL)
