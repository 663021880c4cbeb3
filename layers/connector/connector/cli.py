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
    demo.add_argument("--dry-run", action="store_true", help="first run is a dry run: show the entries that would be booked, send nothing (with --resync the second run books)")
    demo.add_argument("--import-relations", action="store_true", help="the tool already holds some relations: import them into the host product before the first sync (linked / created / ambiguous) and check that the sync creates none twice")
    demo.add_argument("--email", type=Path, default=Path("out/last-sync-email.html"), help="write the HTML e-mail of the last manual sync here (default: out/last-sync-email.html)")
    faults = sub.add_parser("faults", help="crash a sync at every step boundary on each tool and check nothing is booked twice or lost")
    faults.add_argument("--tool", choices=["exact", "octopus", "yuki"], help="one tool only (default: all three)")
    faults.add_argument("--documents", type=int, default=200, help="documents per tool (default 200)")
    faults.add_argument("--report", type=Path, help="write the JSON report to this file")
    sandbox = sub.add_parser("sandbox", help="serve the host product and accounting-tool simulators on loopback for your own code, until Ctrl-C")
    sandbox.add_argument("--tool", action="append", metavar="exact|octopus|yuki|host|all", help="sandbox(es) to serve; repeat or comma-separate (default: all)")
    sandbox.add_argument("--port", type=int, default=0, help="first port: the sandboxes take PORT, PORT+1, ... in the order host, exact, octopus, yuki (default 0: free ports)")
    sandbox.add_argument("--documents", type=Path, default=DEFAULT_DOCUMENTS, help="folder of UBL invoices / credit notes loaded into the host product (default: the sample data)")
    sandbox.add_argument("--env-file", type=Path, help="also write the URLs and credentials as shell export lines to this file")
    sandbox.add_argument("--speed", type=float, default=1.0, help="run the sandboxes' clock this many times faster than real time (default 1)")
    sandbox.add_argument("--exact-page-size", type=int, default=None, help="rows per OData page of the Exact Online sandbox (default 60, as Exact)")
    night = sub.add_parser("night", help="simulate a night of nightly syncs (calibrated on a few real syncs per tool): finish time, 429s, concurrency per tenant, AWS cost")
    night.add_argument("--entities", type=int, default=5000, help="company entities to simulate (default 5000)")
    night.add_argument("--accounts", type=int, default=None, help="accounts they belong to (default: one per five entities, at most 1000)")
    night.add_argument("--seed", type=int, default=11, help="seed of the simulated population (default 11)")
    night.add_argument("--report", type=Path, help="write the JSON report (measured and modelled figures, assumptions) to this file")
    serve = sub.add_parser("serve", help="the local API (same handlers as API Gateway) with the sandboxes, and the console page at /console")
    serve.add_argument("--port", type=int, default=8080, help="port of the API and the console on 127.0.0.1 (default 8080; 0: a free port)")
    serve.add_argument("--documents", type=Path, default=DEFAULT_DOCUMENTS, help="folder of UBL invoices / credit notes loaded into the host product (default: the sample data)")
    serve.add_argument("--sandbox-port", type=int, default=0, help="first port of the sandboxes (default 0: free ports)")
    serve.add_argument("--speed", type=float, default=30.0, help="run the sandboxes' clock this many times faster than real time (default 30, as the demo)")
    serve.add_argument("--env-file", type=Path, help="also write the console URL, API, TOKEN and the sandboxes' credentials as shell export lines to this file")
    serve.add_argument("--verbose", action="store_true", help="show the functions' logs and metrics")
    bench = sub.add_parser("bench", help="benchmark: tool calls per document, rate-limited wall time, CPU, memory, state transitions, handler import times")
    bench.add_argument("--sizes", default="100,1000,10000", help="comma-separated document counts (default 100,1000,10000)")
    bench.add_argument("--report", type=Path, help="write the figures as JSON to this file")
    bench.add_argument("--tool", choices=["exact", "octopus", "yuki"], action="append", help="this tool only (repeatable; default: all three)")
    bench.add_argument("--wall-max", type=int, default=1000, help="measure the rate-limited wall time up to this many documents (default 1000)")
    bench.add_argument("--jobs", type=int, help="measurements side by side in worker processes (default 1: side by side, they inflate each other's CPU figures)")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=150)
    if args.command == "demo":
        if not args.documents.is_dir():
            parser.error(f"--documents: {args.documents} is not a folder")
        from connector.demo import run_demo

        tools = (args.tool,) if args.tool else ("exact", "octopus", "yuki")
        return run_demo(tools=tools, documents=args.documents, report=args.report, resync=args.resync, console=console, email=args.email, direction=Direction(args.direction), import_relations=args.import_relations, dry_run=args.dry_run)
    if args.command == "faults":
        from connector.faults import run_faults

        tools = (args.tool,) if args.tool else ("exact", "octopus", "yuki")
        return run_faults(tools=tools, documents=args.documents, report=args.report, console=console)
    if args.command == "night":
        if args.entities < 1:
            parser.error("--entities must be at least 1")
        from connector.night import run_night

        return run_night(args.entities, args.report, console, accounts=args.accounts, seed=args.seed)
    if args.command in ("sandbox", "serve") and not args.documents.is_dir():
        parser.error(f"--documents: {args.documents} is not a folder")
    if args.command == "sandbox":
        from connector.sandboxes import parse_tools, run_sandboxes

        try:
            tools = parse_tools(args.tool)
        except ValueError as error:
            parser.error(f"--tool: {error}")
        try:
            return run_sandboxes(tools, args.port, args.documents, console, env_file=args.env_file, speed=args.speed, exact_page_size=args.exact_page_size)
        except OSError as error:
            parser.error(f"--port: {error.strerror or error} (choose another first port, or 0 for free ports)")
    if args.command == "serve":
        from connector.console.serve import run_console

        try:
            return run_console(args.port, args.documents, console, env_file=args.env_file, speed=args.speed, sandbox_port=args.sandbox_port, verbose=args.verbose)
        except OSError as error:
            parser.error(f"--port / --sandbox-port: {error.strerror or error} (choose other ports, or 0 for free ports)")
    if args.command == "bench":
        from connector.bench import TOOLS, run_bench

        try:
            sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
        except ValueError:
            parser.error(f"--sizes: {args.sizes!r} is not a comma-separated list of numbers")
        if not sizes or min(sizes) < 1:
            parser.error("--sizes: give at least one positive document count")
        return run_bench(sizes, args.report, console, tools=tuple(args.tool or TOOLS), wall_max=args.wall_max, jobs=args.jobs)
    return 2


if __name__ == "__main__":
    sys.exit(main())
