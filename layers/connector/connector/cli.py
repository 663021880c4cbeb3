"""The ``connector`` command line: ``connector demo`` (more commands come with their issues)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``connector`` console script; returns the exit code."""
    from connector.demo import DEFAULT_DOCUMENTS
    from connector.models import Direction

    parser = argparse.ArgumentParser(prog="connector", description="Accounting connector: local demo and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="full sync of UBL e-invoices on the local stack, with a result table")
    demo.add_argument("--tool", choices=["exact", "octopus", "yuki"], help="book into this tool only (default: a demo account with one company entity on each tool)")
    demo.add_argument("--documents", type=Path, default=DEFAULT_DOCUMENTS, help="folder of UBL invoices / credit notes (default: the sample data)")
    demo.add_argument("--direction", choices=["outgoing", "incoming"], default="outgoing", help="load the UBL files as booked sales documents (default) or as approved incoming Peppol documents")
    demo.add_argument("--report", type=Path, help="write the JSON report to this file")
    demo.add_argument("--resync", action="store_true", help="run a second sync right after the first")
    demo.add_argument("--email", type=Path, default=Path("out/last-sync-email.html"), help="write the HTML e-mail of the last manual sync here (default: out/last-sync-email.html)")
    faults = sub.add_parser("faults", help="crash a sync at every step boundary on each tool and check nothing is booked twice or lost")
    faults.add_argument("--tool", choices=["exact", "octopus", "yuki"], help="one tool only (default: all three)")
    faults.add_argument("--documents", type=int, default=200, help="documents per tool (default 200)")
    faults.add_argument("--report", type=Path, help="write the JSON report to this file")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=150)
    if args.command == "demo":
        if not args.documents.is_dir():
            parser.error(f"--documents: {args.documents} is not a folder")
        from connector.demo import run_demo

        tools = (args.tool,) if args.tool else ("exact", "octopus", "yuki")
        return run_demo(tools=tools, documents=args.documents, report=args.report, resync=args.resync, console=console, email=args.email, direction=Direction(args.direction))
    if args.command == "faults":
        from connector.faults import run_faults

        tools = (args.tool,) if args.tool else ("exact", "octopus", "yuki")
        return run_faults(tools=tools, documents=args.documents, report=args.report, console=console)
    return 2


if __name__ == "__main__":
    sys.exit(main())
