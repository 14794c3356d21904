"""The `genzoo` command: the demo, the web UI, the body model, the species table and the catalog.

Errors a user can fix (an :class:`~genzoo_assets.core.errors.InputError`: a bad file, an unknown
species, an unwritable data dir, a bad flag; or an OSError about a path) print one line naming the
input and exit with status 2; set ``GENZOO_DEBUG=1`` for the traceback. Any other exception is a
bug and shows its traceback. SIGTERM and SIGINT stop the command (exit status 143 or 130).
"""

from __future__ import annotations

import argparse
import json
import sys

from genzoo_assets.app.signals import Stopped, stop_on_signals
from genzoo_assets.core.errors import InputError, debug, input_error, one_line

EPILOG = """examples:
  genzoo demo                               offline end-to-end demo into ./data (or $GENZOO_DATA_DIR)
  genzoo ui                                 Dagster web UI on http://127.0.0.1:3000
  genzoo body info procedural --json        describe the embedded body model
  genzoo species add "Snow leopard"         add a species (scientific or common name)
  genzoo species import-mdd MDD_v2.0.csv    use a Mammal Diversity Database release as the frame
  genzoo catalog sql "SELECT species, count(*) FROM samples GROUP BY 1"
  genzoo catalog sql "FROM samples" --format csv --limit 0 > samples.csv   every row, streamed
  genzoo export animal3d out/animal3d       Animal3D layout for AniMer (41-beta SMAL datasets)
  genzoo export hf out/hf                   Parquet + dataset card for Hugging Face `datasets`
  genzoo export keep current                pin the current WebDataset export (GenZoo's trainer)
"""
DEFAULT_SQL_LIMIT = 1000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genzoo",
        description="Generative Zoo as a Dagster code location: synthetic 3D animal pose/shape data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", help="output root (default: $GENZOO_DATA_DIR or ./data)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="materialise every stage offline on a few species (CPU, < 15 min)"
    )
    demo.add_argument(
        "--species",
        type=int,
        default=None,
        help="number of species, the 2 held-out felids included (default: all 62 of the demo set)",
    )
    demo.add_argument(
        "--samples-per-shard", type=int, default=None, help="samples per species (one shard each)"
    )
    demo.add_argument(
        "--resolution", type=int, default=None, help="render and image size in pixels"
    )
    demo.add_argument("--train-steps", type=int, default=None, help="regressor training steps")
    demo.add_argument(
        "--workers",
        type=int,
        default=None,
        help="partitions generated side by side, one process each "
        "(default: 1 with a GPU, else the CPU cores, at most 4)",
    )

    ui = sub.add_parser(
        "ui", help="start the Dagster web UI (dg dev) with a project-local DAGSTER_HOME"
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)

    body = sub.add_parser("body", help="inspect a body model").add_subparsers(
        dest="body_command", required=True
    )
    info = body.add_parser("info", help="vertices, faces, joints, betas and source of a model file")
    info.add_argument("model", help='a SMAL/SMAL+ .pkl or .npz file, or "procedural"')
    info.add_argument("--json", action="store_true", help="print a JSON object")

    species = sub.add_parser("species", help="the species table").add_subparsers(
        dest="species_command", required=True
    )
    ls = species.add_parser("list", help="list the species table")
    ls.add_argument("--json", action="store_true")
    add = species.add_parser("add", help="add a species by scientific or common name")
    add.add_argument("name")
    mdd = species.add_parser(
        "import-mdd", help="replace the non-dog species with a filtered MDD release"
    )
    mdd.add_argument("path", help="Mammal Diversity Database CSV (v1.x or v2.0 columns)")
    for cmd in (add, mdd):
        cmd.add_argument("--json", action="store_true")
        cmd.add_argument(
            "--no-materialize",
            action="store_true",
            help="only record the request; the next `species` materialisation applies it",
        )

    cat = sub.add_parser("catalog", help="the DuckDB catalog").add_subparsers(
        dest="catalog_command", required=True
    )
    sql = cat.add_parser("sql", help="run one read-only SQL statement against the catalog")
    sql.add_argument("query")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_SQL_LIMIT,
        help=f"rows to print (default {DEFAULT_SQL_LIMIT}); 0 streams every row (csv and json only)",
    )
    sql.add_argument(
        "--memory-limit", default=None, help="DuckDB memory cap for the query (default 4GB)"
    )
    refresh = cat.add_parser(
        "refresh",
        help="materialise the `catalog` and `results` assets (incremental for the catalog)",
    )
    refresh.add_argument(
        "--full",
        action="store_true",
        help="rebuild the catalog from every Parquet file (after a file was edited in place, "
        "without the rename every stage writes with)",
    )

    export = sub.add_parser("export", help="the dataset in other tools' layouts").add_subparsers(
        dest="export_command", required=True
    )
    for name, text in (
        (
            "animal3d",
            "Animal3D release layout (images, masks, train.json) that AniMer trains on; "
            "datasets made with a 41-beta SMAL model only",
        ),
        ("hf", "Hugging Face dataset: Parquet shards with Image columns and a dataset card"),
    ):
        cmd = export.add_parser(name, help=text)
        cmd.add_argument("out", help="a new (or empty) output folder")
        cmd.add_argument(
            "--body-model",
            default=None,
            help="the body model the dataset was made with (default: $GENZOO_BODY_MODEL or procedural)",
        )
    keep = export.add_parser(
        "keep",
        help="pin a WebDataset export under DATA_DIR/shards so garbage collection never removes it "
        "(without a pin, the export `current` points to and the newest 3 are kept)",
    )
    keep.add_argument("name", help="the export's folder name (export-...), or `current`")
    keep.add_argument("--release", action="store_true", help="remove the pin instead")
    return p


def _print_table(df) -> None:
    import pandas as pd

    with pd.option_context(
        "display.max_rows", None, "display.max_columns", 50, "display.width", 200
    ):
        print(df.to_string(index=False) if len(df) else "(no rows)")


def _stream(batches, fmt: str, limit: int) -> tuple[int, bool]:
    """Write csv or json (one array) batch by batch; (rows written, whether rows were left out)."""
    import itertools

    batches = iter(batches)
    first = next(batches)  # runs the query: its errors come before any output
    shown, more = 0, False
    if fmt == "json":
        sys.stdout.write("[")
    for part in itertools.chain([first], batches):
        if limit and shown >= limit:
            more = not part.empty
            break
        take = part.iloc[: limit - shown] if limit else part
        more = len(take) < len(part)
        if fmt == "csv":
            take.to_csv(sys.stdout, index=False, header=shown == 0)
        elif len(take):
            sys.stdout.write(
                ("," if shown else "") + take.to_json(orient="records", default_handler=str)[1:-1]
            )
        shown += len(take)
        if more:
            break
    if fmt == "json":
        sys.stdout.write("]\n")
    return shown, more


def _body_info(args) -> int:
    from genzoo_assets.core.body.info import body_info

    info = body_info(args.model)
    if args.json:
        print(json.dumps(info))
    else:
        for key in (
            "source",
            "num_vertices",
            "num_faces",
            "num_joints",
            "num_betas",
            "keypoint_set",
        ):
            print(f"{key:>13}: {info[key]}")
        print(f"{'joint_names':>13}: {', '.join(info['joint_names'])}")
    return 0


def _species(args) -> int:
    from genzoo_assets.app import species as species_cli

    return species_cli.run(args)


def _materialize_catalogs(root, full: bool = False) -> list[str]:
    """The `catalog` and `results` assets, run in the project instance: their files' only writers."""
    from genzoo_assets.app.run import run_assets
    from genzoo_assets.defs.catalog import catalog
    from genzoo_assets.defs.resources import settings_from_env
    from genzoo_assets.defs.results import results

    run = run_assets(
        [catalog, results],
        settings_from_env(data_dir=str(root)),
        run_config={"ops": {"catalog": {"config": {"full": full}}}},
    )
    return [
        str(e.materialization.metadata["path"].value)
        for e in run.get_asset_materialization_events()
    ]


def _with_catalog(root, read):
    """``read()``; when there is no catalog for ``root`` yet, build it through its asset (one line on
    stderr) and read again: only the `catalog` asset writes the catalog, never a reader."""
    from genzoo_assets.core.catalog import CatalogMissingError

    try:
        return read()
    except CatalogMissingError as exc:
        print(
            f"genzoo: {exc}; materialising the `catalog` and `results` assets first",
            file=sys.stderr,
        )
        _materialize_catalogs(root)
        return read()


def _catalog(args) -> int:
    from genzoo_assets.core.catalog import query
    from genzoo_assets.core.paths import data_dir

    root = data_dir(override=args.data_dir)
    if args.catalog_command == "refresh":
        for path in _materialize_catalogs(root, full=args.full):
            print(path)
        return 0
    if args.limit < 0:
        raise InputError(f"--limit must be 0 (every row) or more, got {args.limit}")
    if args.limit == 0 and args.format == "table":
        raise InputError(
            "--limit 0 (every row) needs --format csv or json, which stream; a table is held in memory"
        )
    memory = {"memory_limit": args.memory_limit} if args.memory_limit else {}
    if args.format == "table":
        df = _with_catalog(
            root,
            lambda: query.query(args.query, data_dir=root, limit=args.limit + 1, **memory),
        )
        _print_table(df.iloc[: args.limit])
        shown, more = min(len(df), args.limit), len(df) > args.limit
    else:
        _with_catalog(root, lambda: query.catalog_views(root))  # streaming starts only on a catalog
        shown, more = _stream(
            query.query_batches(args.query, data_dir=root, **memory),
            args.format,
            args.limit,
        )
    if more:
        print(
            f"genzoo: showed the first {shown} rows (--limit {args.limit}); the result has more: pass a larger "
            "--limit, or --limit 0 with --format csv or json to stream every row",
            file=sys.stderr,
        )
    return 0


def _say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stdout stays the command's result line


def _export(args) -> int:
    from genzoo_assets.defs.resources import settings_from_env

    if args.export_command == "keep":
        from genzoo_assets.core.dataset.webdataset import pin_export
        from genzoo_assets.core.layout import shards_dir
        from genzoo_assets.core.paths import data_dir

        shards = shards_dir(data_dir(override=args.data_dir))
        folder = pin_export(shards, args.name, release=args.release)
        print(f"{'released' if args.release else 'pinned'} {folder}")
        return 0
    from genzoo_assets.app.progress import ProgressLines

    settings = settings_from_env(data_dir=args.data_dir, body_model=args.body_model)
    root, body = settings.root(), settings.body_model
    progress = ProgressLines(f"genzoo export {args.export_command}", _say_on_stderr)
    if args.export_command == "animal3d":
        from genzoo_assets.core.dataset.animal3d import export_animal3d

        result = _with_catalog(
            root, lambda: export_animal3d(root, args.out, body, progress=progress)
        )
        print(f"{result['count']} samples -> {result['json']}")
    else:
        from genzoo_assets.core.dataset.hf import export_hf

        result = _with_catalog(root, lambda: export_hf(root, args.out, body, progress=progress))
        print(
            ", ".join(f"{split} {n}" for split, n in result["counts"].items())
            + f" -> {result['card']}"
        )
    return 0


def _demo(args) -> int:
    from genzoo_assets.app.demo import run_demo

    return run_demo(
        data_dir=args.data_dir,
        num_species=args.species,
        samples_per_shard=args.samples_per_shard,
        resolution=args.resolution,
        train_steps=args.train_steps,
        workers=args.workers,
    )


def _ui(args) -> int:
    from genzoo_assets.app.ui import run_ui

    return run_ui(host=args.host, port=args.port, data_dir=args.data_dir)


HANDLERS = {
    "body": _body_info,
    "species": _species,
    "catalog": _catalog,
    "export": _export,
    "demo": _demo,
    "ui": _ui,
}


def report(exc: BaseException) -> int | None:
    """Print an input error as one line and return exit status 2; None for anything else (a bug,
    whose traceback the caller lets through). ``GENZOO_DEBUG`` lets every error through."""
    cause = input_error(exc)
    if cause is None or debug():
        return None
    print(f"genzoo: error: {one_line(cause)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with stop_on_signals():
            return HANDLERS[args.command](args)
    except Stopped as stop:
        print(f"genzoo: {stop}", file=sys.stderr)
        return stop.status
    except Exception as exc:
        status = report(exc)
        if status is None:
            raise
        return status


if __name__ == "__main__":
    sys.exit(main())
