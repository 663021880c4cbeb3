"""The accounting connector: keeps a host product (CRM / invoicing) and accounting tools in step.

Package layout (see ``docs/architecture.md``):

- ``money``, ``models``, ``booking``, ``ubl``: the domain (no AWS, no HTTP).
- ``sync``: the sync engine (plan a run, process a batch, complete a component, finish a run),
  written against the small interfaces in ``ports``.
- ``adapters``: one module per accounting tool (httpx); ``host``: the host product's API client.
- ``stores``: DynamoDB / Secrets Manager implementations of the ports, plus in-memory fakes.
- ``sandbox``: loopback simulators of the host product and the accounting tools.
- ``local``: the local stack (moto + the real ASL + the real handlers).
"""

__version__ = "0.1.0"
