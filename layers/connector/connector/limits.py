"""How many bytes the connector reads of one answer or one document, at most.

A sync runs in a Lambda function with 512 MB of memory (``template.yaml``: ``MemorySize``). What a body
costs there is a multiple of its size: an answer's bytes are held once as they arrive and once joined,
then decoded (a JSON answer becomes dicts, strings and ``Decimal`` objects, about 6 to 10 times its size;
Yuki's SOAP answers and a UBL file become an lxml tree, about 10 times the file). Measured before these
limits: a 50 MB UBL attachment peaked at about 660 MB RSS and a 150 MB tool answer at 3.4 GB.

- :data:`MAX_ANSWER_BYTES` (16 MiB): one answer of a tool (Exact Online, Octopus, Yuki) or of the host
  product. The largest answers the connector asks for are pages of at most a few hundred rows (Exact's
  OData pages, the host's pages of 100, Yuki's searches of 100 records), well under 1 MiB; 16 MiB is
  more than ten times that and still costs at most about 160 MiB decoded, leaving the function room for
  the batch it is booking.
- :data:`MAX_UBL_BYTES` (10 MiB): one UBL e-invoice (an incoming document's attachment, a file given to
  the demo's ``--documents``). An EN 16931 invoice without embedded attachments is tens of kilobytes;
  embedded supporting documents (BG-24, base64 in ``cbc:EmbeddedDocumentBinaryObject``) make most of the
  rest. 10 MiB parses into about 100 MiB of tree.

A body beyond a limit is refused before it is read whole (:func:`connector.http.read_response`): a
document is skipped with the reason, a tool or host answer is that component's error. Tests lower the
limits with ``monkeypatch`` (the readers look them up here at every read).
"""

from __future__ import annotations

MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_UBL_BYTES = 10 * 1024 * 1024


def megabytes(size: int) -> str:
    """``size`` bytes as people read it: ``"12.5 MB (13,107,200 bytes)"`` (1 MB = 1,048,576 bytes)."""
    return f"{size / (1024 * 1024):.1f} MB ({size:,} bytes)"
