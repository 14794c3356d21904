"""`genzoo demo`: every asset, offline, on a handful of species, through the project's Dagster instance.

Runs go into the project-local instance (``.dagster_home``), so `genzoo ui` shows them afterwards.
Defaults are sized for about 13 minutes on 2 CPU cores: 62 species (20 dog breeds, 40 other species and 2
felids held out for the benchmark) × 1 shard × 64 samples at 128 px with an unsubdivided mesh (the
regressor sees 64×48 crops, so more samples beat more pixels), and a tiny regressor trained for
3,500 steps.

Why these numbers: species diversity is what teaches posture and shape that transfer, and GenZoo's
two Loop subdivisions buy nothing at 128 px; the side-by-side runs behind each number are in
``docs/experiments/demo-sizing.md``.

The demo's regressor uses the ResNet backbone option: on this data a 2-layer ViTPose learns the
camera but not posture within CPU minutes, while the tiny ResNet does. Half of its training crops
are grey: the held-out felids' coats look like no training species', and grey crops raised held-out
PCK@0.10 from 12.2 to 17.0 in a side-by-side run. Real runs use ViT-H ViTPose (`size: huge`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import dagster as dg
import pandas as pd

from genzoo_assets.app import run
from genzoo_assets.app.instance import project_instance
from genzoo_assets.app.run import HEARTBEAT_S, cancel_runs
from genzoo_assets.app.signals import Stopped, check_stopped, exit_on_signals
from genzoo_assets.core import layout
from genzoo_assets.core.errors import InputError, input_error, one_line
from genzoo_assets.core.evaluate import summarize
from genzoo_assets.core.paths import data_dir as resolve_data_dir
from genzoo_assets.defs.benchmark import SUMMARY_COLUMNS, benchmark
from genzoo_assets.defs.catalog import catalog
from genzoo_assets.defs.images import images
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import Animal3DRelease, GenZooSettings, settings_from_env
from genzoo_assets.defs.results import results
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts
from genzoo_assets.defs.training import dataset_shards, regressor

DEMO_SPECIES = (
    "dog-labrador-retriever",
    "dog-german-shepherd-dog",
    "dog-dachshund",
    "dog-siberian-husky",
    "equus-quagga",
    "giraffa-camelopardalis",
    "sus-scrofa",
    "ursus-arctos",
    "vulpes-vulpes",
    "cervus-elaphus",
    # 30 more, for shape and coat diversity (a seeded draw from the bundled table, Felidae excluded)
    "syncerus-caffer",
    "herpestes-ichneumon",
    "sus-domesticus",
    "axis-axis",
    "tragelaphus-oryx",
    "mustela-putorius",
    "tragelaphus-angasii",
    "tapirus-terrestris",
    "muntiacus-reevesi",
    "manis-crassicaudata",
    "paradoxurus-hermaphroditus",
    "ursus-maritimus",
    "equus-hemionus",
    "equus-ferus",
    "mustela-erminea",
    "kobus-ellipsiprymnus",
    "mephitis-mephitis",
    "hyaena-hyaena",
    "ovibos-moschatus",
    "cryptoprocta-ferox",
    "smutsia-temminckii",
    "speothos-venaticus",
    "alces-alces",
    "vicugna-pacos",
    "dog-redbone-coonhound",
    "dog-saarloos-wolfdog",
    "dog-french-bulldog",
    "dog-toy-poodle",
    "dog-large-munsterlander",
    "dog-bloodhound",
    # 20 more (a seeded draw alternating dog breeds and other species; Felidae excluded)
    "ovis-canadensis",
    "dog-bohemian-shepherd",
    "chrysocyon-brachyurus",
    "dog-lhasa-apso",
    "lama-guanicoe",
    "dog-bluetick-coonhound",
    "helarctos-malayanus",
    "dog-shih-tzu",
    "litocranius-walleri",
    "dog-tibetan-terrier",
    "cervus-nippon",
    "dog-giant-schnauzer",
    "boselaphus-tragocamelus",
    "dog-chinook",
    "redunca-arundinum",
    "dog-irish-red-and-white-setter",
    "mustela-nivalis",
    "dog-border-collie",
    "capra-ibex",
    "dog-saluki",
    "panthera-leo",
    "lynx-lynx",  # Felidae: held out of training, the benchmark's test species
)
HELDOUT_SPECIES = DEMO_SPECIES[-2:]
SUBDIVISIONS = (
    0  # of the mesh before rendering: at 128 px its triangles are below a pixel already (see above)
)
_SAMPLE_ASSETS = {
    a.key.to_user_string(): a
    for a in (shape_params, pose_params, control_renders, captions, prompts, images)
}
PER_SAMPLE = [_SAMPLE_ASSETS[stage] for stage in layout.SAMPLE_STAGES]
# The demo's regressor (also `bench/data_scaling.py`'s): see the module docstring for why.
TRAIN_CONFIG = {
    "size": "tiny",
    "backbone": "resnet",
    "batch_size": 32,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "max_steps": 3500,
    "val_every": 125,
    "patience": 8,
    "grayscale": 0.5,
    "global_orient_weight": 30.0,
    "resume": False,
    # crops in the training process, as the demo's timings were measured: its split is decoded
    # once into memory, and on a 2-CPU machine a worker would take a core from the training step
    "num_workers": 0,
}
WORKER_GRACE_S = 3.0  # a stopped demo's workers get this long after SIGTERM, then SIGKILL


def _say(message: str) -> None:
    print(message, flush=True)


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(asset):
            return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    return {}


def run_assets(
    assets, instance, settings, partition_key=None, run_config=None, **watch
) -> dg.ExecuteInProcessResult:
    """:func:`genzoo_assets.app.run.run_assets` with no Animal3D release (the demo benchmarks its
    held-out species only), saying on stdout; ``watch`` (``progress``, ``heartbeat_s``) is passed on."""
    return run.run_assets(
        assets,
        settings,
        instance=instance,
        partition_key=partition_key,
        run_config=run_config,
        resources={"animal3d": Animal3DRelease()},
        say=_say,
        **watch,
    )


def generation_workers() -> int:
    """Default number of processes that generate partitions side by side: 1 with a GPU, else up to 4 CPU cores.

    A partition is mostly one core's work (Dagster's bookkeeping, rasterising, GrabCut), so on a
    CPU-only machine two workers on 2 cores generate the demo's partitions in about half the time.
    With a GPU the ``gpu`` pool has one slot per GPU and the generation steps queue for it anyway.
    """
    from genzoo_assets.defs.resources import gpu_count

    return 1 if gpu_count() else max(1, min(4, os.cpu_count() or 1))


_WORKER: dict = {}


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so a demo killed with
    SIGKILL leaves no worker generating; elsewhere, and if the parent is already gone, exit."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def _start_worker(home: str, settings: dict, threads: int, parent: int) -> None:
    import cv2
    import torch

    _die_with_parent(parent)
    exit_on_signals()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    _WORKER.update(
        instance=dg.DagsterInstance.from_config(home), settings=GenZooSettings(**settings)
    )


def _generate_one(instance, settings, key: str) -> tuple[str, float, int]:
    """One partition's per-sample assets: (key, seconds, images flagged)."""
    t = time.monotonic()
    # a worker says nothing while it waits: the parent's lines count the partitions
    result = run_assets(PER_SAMPLE, instance, settings, key, heartbeat_s=None)
    return key, time.monotonic() - t, _metadata(result, "images").get("flagged", 0)


def _generate(key: str) -> tuple[str, float, int]:
    """:func:`_generate_one` in a worker process.

    Dagster's errors do not always pickle back to the parent, so the error is sent as text: an
    input error as an InputError (one line for the user), anything else as a RuntimeError that
    carries the worker's traceback.
    """
    try:
        return _generate_one(_WORKER["instance"], _WORKER["settings"], key)
    except Exception as error:
        cause = input_error(error)
        if cause is not None:
            raise InputError(f"partition {key}: {one_line(cause)}") from None
        raise RuntimeError(f"partition {key}:\n{traceback.format_exc()}") from None


def _stop_workers(pool: ProcessPoolExecutor, grace_s: float = WORKER_GRACE_S) -> list[int]:
    """SIGTERM the pool's worker processes, SIGKILL those left after ``grace_s``; their pids.

    A worker in a Dagster run treats SIGTERM as an interrupt of its step and the pool keeps a
    worker alive through it, so a stopped demo does not wait for its partitions (each is whole or
    absent: every file is published atomically).
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    return [proc.pid for proc in procs]


def materialize_samples(
    instance, settings, shards_by_species: dict[str, int], say=print, workers: int = 1
) -> int:
    """Materialise shards ``000``… of each species' per-sample assets; partitions done before are skipped.

    Returns how many partitions were generated. A partition counts as done when the instance
    records a materialisation of its ``images`` (the last per-sample asset).
    The species table (the ``species`` asset) must exist.

    ``workers`` > 1 runs that many partitions at a time, each in its own process and Dagster run
    (spawned, so each has its own GL context; torch and OpenCV split the cores between them). On a
    machine without a GPU the ``gpu`` pool gets one slot per worker meanwhile
    (:func:`genzoo_assets.instance.configure_pools`). The first failure stops new partitions, lets
    the running ones finish (each is whole or absent) and is raised naming its partition. As with
    any spawned pool, a calling script needs the ``if __name__ == "__main__":`` guard.
    """
    if workers < 1:
        raise ValueError(f"materialize_samples: workers must be at least 1, got {workers}")
    done = instance.get_materialized_partitions(dg.AssetKey("images"))
    todo = [
        sample_partition_key(sp, f"{i:03d}")
        for sp, n in shards_by_species.items()
        for i in range(n)
    ]
    reused = [key for key in todo if key in done]
    todo = [key for key in todo if key not in done]
    if reused:
        say(f"{len(reused)} partition(s) already materialised in this instance: reused")
    workers = min(workers, max(1, len(todo)))

    def report(i: int, key: str, seconds: float, flagged: int) -> None:
        say(
            f"{i:2d}/{len(todo)} {key}: {settings.samples_per_shard} samples rendered, captioned, prompted "
            f"and generated ({flagged} flagged) in {seconds:.0f} s"
        )

    if workers == 1:
        for i, key in enumerate(todo, 1):
            report(i, *_generate_one(instance, settings, key))
        return len(todo)
    from genzoo_assets.app.instance import configure_pools

    threads = max(1, (os.cpu_count() or 1) // workers)
    configure_pools(instance, cpu_slots=workers)
    since = time.time()
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(instance.root_directory, settings.model_dump(), threads, os.getpid()),
        ) as pool:
            try:
                _collect(pool, todo, report, say)
            except Stopped:
                stopped = _stop_workers(pool)
                pool.shutdown(wait=False, cancel_futures=True)
                cancel_runs(instance, since, pids=stopped)
                raise
            except BaseException:
                # the running partitions finish; the queued never start
                pool.shutdown(cancel_futures=True)
                raise
    finally:
        configure_pools(instance)
    return len(todo)


def _collect(pool: ProcessPoolExecutor, todo: list[str], report, say) -> None:
    """Submit every partition and report each as it finishes; every ``HEARTBEAT_S`` without one,
    say how many are done (a partition can take minutes on a loaded machine)."""
    pending = {pool.submit(_generate, key) for key in todo}
    done, start = 0, time.monotonic()
    while pending:
        finished, pending = wait(pending, timeout=HEARTBEAT_S, return_when=FIRST_COMPLETED)
        check_stopped()
        if not finished:
            say(
                f"{done}/{len(todo)} partitions done, still generating "
                f"({time.monotonic() - start:.0f} s)"
            )
        for future in finished:
            done += 1
            report(done, *future.result())


def export_shards(instance, settings) -> dict:
    """Refresh the catalog and export the WebDataset shards; the export's metadata."""
    run_assets([catalog], instance, settings)
    return _metadata(run_assets([dataset_shards], instance, settings), "dataset_shards")


def _flag_ranges() -> dict[str, tuple[int, int | None, str]]:
    """Each demo flag's (lowest, highest or None, why) value."""
    from genzoo_assets.defs.resources import RESOLUTION_RANGE

    return {
        "--species": (
            len(HELDOUT_SPECIES) + 1,
            len(DEMO_SPECIES),
            f"one training species and the {len(HELDOUT_SPECIES)} held-out felids at least; "
            "the demo's species list has no more",
        ),
        "--samples-per-shard": (1, None, ""),
        "--resolution": (*RESOLUTION_RANGE, "pixels"),
        "--train-steps": (1, None, ""),
        "--workers": (1, None, ""),
    }


def check_flags(**flags: int | None) -> None:
    """An InputError naming the first flag (``num_species`` is ``--species``) outside its range;
    None means the flag was not given (its default)."""
    ranges = _flag_ranges()
    for name, value in flags.items():
        flag = "--species" if name == "num_species" else "--" + name.replace("_", "-")
        if value is None:
            continue
        low, high, why = ranges[flag]
        if value < low or (high is not None and value > high):
            allowed = f"at least {low}" if high is None else f"in [{low}, {high}]"
            raise InputError(f"{flag} must be {allowed}{f' ({why})' if why else ''}, got {value}")


def run_demo(
    data_dir=None,
    num_species=None,
    samples_per_shard=None,
    resolution=None,
    train_steps=None,
    workers=None,
) -> int:
    """The demo; each argument is a `genzoo demo` flag's value, None for its default."""
    check_flags(
        num_species=num_species,
        samples_per_shard=samples_per_shard,
        resolution=resolution,
        train_steps=train_steps,
        workers=workers,
    )
    root = resolve_data_dir(override=data_dir)
    settings = settings_from_env(
        data_dir=str(root),
        samples_per_shard=64 if samples_per_shard is None else samples_per_shard,
        resolution=128 if resolution is None else resolution,
        subdivisions=SUBDIVISIONS,
        dataset_size=1_000_000,
    )
    chosen = (
        DEMO_SPECIES
        if num_species is None
        else DEMO_SPECIES[: num_species - len(HELDOUT_SPECIES)] + HELDOUT_SPECIES
    )
    instance = project_instance()
    start = time.monotonic()
    _say(f"genzoo demo → {root}  (Dagster instance {instance.root_directory})")

    meta = _metadata(run_assets([species], instance, settings), "species")
    _say(
        f"[1/6] species table: {meta['num_species']} species, {meta['num_dog_breeds']} dog breeds "
        "registered as partitions"
    )

    materialize_samples(
        instance,
        settings,
        {key: 1 for key in chosen},
        say=lambda m: _say(f"[2/6] {m}"),
        workers=generation_workers() if workers is None else workers,
    )

    meta = _metadata(run_assets([catalog], instance, settings), "catalog")
    _say(f"[3/6] catalog: {meta['samples']} samples of {meta['species']} species in {meta['path']}")

    meta = _metadata(run_assets([dataset_shards], instance, settings), "dataset_shards")
    _say(
        f"[4/6] WebDataset shards: train {meta.get('samples_train', 0)}, val {meta.get('samples_val', 0)}, "
        f"held-out Felidae {meta.get('samples_heldout', 0)}"
    )

    t = time.monotonic()
    train_cfg = {**TRAIN_CONFIG, **({} if train_steps is None else {"max_steps": train_steps})}
    train_cfg["val_every"] = min(train_cfg["val_every"], train_cfg["max_steps"])
    meta = _metadata(
        run_assets(
            [regressor],
            instance,
            settings,
            run_config={"ops": {"regressor": {"config": train_cfg}}},
            progress=lambda m: _say(f"[5/6] {m}"),
        ),
        "regressor",
    )
    _say(
        f"[5/6] regressor: {meta['steps']} steps in {time.monotonic() - t:.0f} s, best validation keypoint loss "
        f"{meta['best_val_keypoint_loss']:.4f} at step {meta['best_step']}"
    )

    run_assets([benchmark], instance, settings, partition_key="heldout")
    run_assets([results], instance, settings)
    report = layout.benchmark_dir(root, "heldout")
    summary = summarize(pd.read_parquet(report / "predictions.parquet"))
    overall = summary[summary["group"] == "overall"][SUMMARY_COLUMNS]
    _say("[6/6] benchmark on held-out species (PCK in %, errors ×1000):")
    _say(overall.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    _say(f"report: {report / 'report.html'}  (also {report / 'report.md'})")
    _say(
        f"done in {(time.monotonic() - start) / 60:.1f} min; `make ui` shows these runs; "
        f'`genzoo catalog sql "SELECT * FROM samples LIMIT 5"` queries the catalog'
    )
    return 0
