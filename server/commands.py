"""The server package's commands: serve, check, scan and feedback (list, export).

`serve`'s flags come from `realcheck.server.config.ServerConfig` (defaults, choices and help text live on its fields).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from realcheck.model.errors import RealCheckError
from realcheck.model.flags import DefaultsHelpFormatter, add_flags, flag_values, positive_int
from realcheck.server.config import ServerConfig

TRUST_ANCHORS = ("c2pa_trust_anchors",)
FEEDBACK_DB = ("feedback_db",)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register serve, check, scan and feedback."""
    serve = commands.add_parser("serve", help="serve a model over HTTP (JSON API, micro-batching, metrics)")
    add_flags(serve, ServerConfig)
    serve.set_defaults(handler=command_serve)
    _add_queries(commands)
    _add_feedback(commands)


def _add_queries(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check", help="check images (through a server with --server, else with the model in-process)"
    )
    check.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(handler=command_check)
    scan = commands.add_parser(
        "scan", help="check every image under a folder into a CSV or JSONL file (resumable)"
    )
    scan.add_argument("folder", metavar="DIR", help="folder to scan (recursively)")
    scan.add_argument(
        "--out",
        default=None,
        help="results file: .csv or .jsonl, resumed if present (default: DIR's name + -realcheck.csv, here)",
    )
    scan.set_defaults(handler=command_scan)
    for query in (check, scan):
        query.add_argument("--server", default=None, help="RealCheck server URL, e.g. http://127.0.0.1:8000")
        query.add_argument(
            "--model", default=None, help="artifact folder to run in-process (default: the bundled model)"
        )
        query.add_argument(
            "--api-key",
            default=os.environ.get("REALCHECK_API_KEY"),
            help="server API key (default: $REALCHECK_API_KEY)",
        )
        query.add_argument(
            "--concurrency", type=positive_int, default=4, help="requests in flight with --server"
        )
        query.add_argument("--batch-size", type=positive_int, default=32, help="batch size in-process")
        add_flags(query, ServerConfig, only=TRUST_ANCHORS)


def _add_feedback(commands: argparse._SubParsersAction) -> None:
    """`feedback list` and `feedback export`: the reports users sent, for the operator and for retraining."""
    feedback = commands.add_parser("feedback", help="list or export the wrong-verdict reports users sent")
    actions = feedback.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the reports, oldest first")
    listing.add_argument("--limit", type=positive_int, default=None, help="at most N reports (the newest)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=command_feedback_list)
    export = actions.add_parser(
        "export", help="real/ and fake/ folders of the shared images plus manifest.csv of every report"
    )
    export.add_argument(
        "--out", required=True, help="a new (or empty) folder; `realcheck finetune --data` reads it"
    )
    export.set_defaults(handler=command_feedback_export)
    for action in (listing, export):
        add_flags(action, ServerConfig, only=FEEDBACK_DB)
        action.formatter_class = DefaultsHelpFormatter


def command_serve(args: argparse.Namespace) -> int:
    from realcheck.server.serve import exit_without_finalising, stop_on_sigterm  # light: no Flask, no model

    # First of all: a SIGTERM while the server is still starting is a clean stop too (exit 0, not 143).
    stop_on_sigterm()
    try:
        return _serve(args)
    except KeyboardInterrupt:
        exit_without_finalising("stopped while starting")
        return 0


def _serve(args: argparse.Namespace) -> int:
    from realcheck.model.artifacts.artifact import resolve_model_dir
    from realcheck.server.serve import run_server

    values = flag_values(args, ServerConfig)
    config = ServerConfig(
        **values | {"model_dir": resolve_model_dir(values["model_dir"]), "api_key": values["api_key"] or None}
    )
    config.provenance_reader()  # a bad trust anchors file is one line now, before the model loads
    return run_server(config)


def command_check(args: argparse.Namespace) -> int:
    from realcheck.server.queries import check_images

    return check_images(args.images, lambda: _checker(args), as_json=args.json)


def command_scan(args: argparse.Namespace) -> int:
    from realcheck.server.queries import check_scan_arguments, scan_folder

    out = args.out or f"{Path(args.folder).resolve().name}-realcheck.csv"  # the same command resumes
    check_scan_arguments(args.folder, out)  # a typo is one line at once, before any model loads
    summary, status = scan_folder(args.folder, out, _checker(args), progress=not args.quiet)
    print(summary.text(Path(out)))
    return status


def _checker(args: argparse.Namespace):
    from realcheck.server.queries import make_checker

    return make_checker(
        args.server, args.model, args.api_key, args.concurrency, args.batch_size, args.c2pa_trust_anchors
    )


def _existing_feedback_store(location: str | None):
    """The store at `location`; a SQLite file that does not exist is an error here, not a new empty database."""
    from realcheck.server.feedback.store import FeedbackStore

    store = FeedbackStore(location)
    if store.url.get_backend_name() == "sqlite" and not Path(store.url.database).is_file():
        raise RealCheckError(f"no feedback database at {store.url.database} (no report was stored there yet)")
    return store


def command_feedback_list(args: argparse.Namespace) -> int:
    store = _existing_feedback_store(args.feedback_db)
    reports = list(store.iter_reports())
    if args.limit is not None:
        reports = reports[-args.limit :]
    for report in reports:
        if args.json:
            print(json.dumps(report.to_dict()))
        else:
            said = f"{report.verdict or '?'} {report.score:.3f}"
            note = f"  {report.note!r}" if report.note else ""
            print(
                f"{report.id:>6}  {report.to_dict()['created_at']}  {report.sha256[:12]}  {report.label:<4}  "
                f"(model {report.model_name} {report.model_version} said {said})"
                f"{'  image' if report.image_shared else ''}{note}"
            )
    if not args.json:
        print(f"{len(reports)} of {store.count()} reports in {store.location}", file=sys.stderr)
    return 0


def command_feedback_export(args: argparse.Namespace) -> int:
    from realcheck.server.feedback.export import export_feedback

    summary = export_feedback(_existing_feedback_store(args.feedback_db), args.out)
    print(summary.text(Path(args.out)))
    return 0
