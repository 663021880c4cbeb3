"""The console: a static page served by ``connector serve`` at ``/console`` that shows and drives the
connector through its public API only (see :mod:`connector.console.serve`)."""
