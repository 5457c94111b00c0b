"""``sktransfer embed DATA --out OUT``: embed a collection, in this process or on
a Dask cluster.

The inputs are listed on the client, cut into fixed-size partitions in a
deterministic order, embedded by :func:`sktransfer.dask.embed_items` -- in this
process with ``--workers 1`` (the default: a cluster's start-up is not worth it
on one machine's worth of work, see ``LOCAL_CLUSTER_CROSSOVER``), else on the
workers of a LocalCluster or of ``--scheduler`` -- and each partition is written
as soon as it is done (see ``_embed_store``).
Killed and rerun, the command embeds only the partitions not on disk yet.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from sktransfer.backbones import BUNDLED_IMAGE, BUNDLED_TEXT
from sktransfer.cli._inputs import _check_texts, read_inputs
from sktransfer.exceptions import (
    InvalidInputError,
    MissingDependencyError,
    SchedulerUnreachableError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_embed_parser", "run_embed"]


def add_embed_parser(sub) -> None:
    """The ``embed`` sub-command's options."""
    from sktransfer.cli._options import add_model_options, add_runtime_options

    embed = sub.add_parser(
        "embed", help="embed an image folder, a list of paths/URLs or a CSV/parquet "
                      "column into a parquet dataset, on a Dask cluster (resumable)")
    embed.add_argument("data", help="an image folder (recursive), a text file "
                                    "listing paths or URLs, or a CSV/parquet file")
    embed.add_argument("--out", required=True,
                       help="output parquet folder; rerun to resume after a kill")
    embed.add_argument("--column", help="CSV/parquet column of paths or texts")
    embed.add_argument("--modality", choices=["auto", "image", "text"],
                       default="auto", help="what --column holds (auto: image "
                                            "paths when every value ends in an "
                                            "image suffix)")
    add_model_options(embed)
    embed.add_argument("--batch-size", type=int, help="inputs per forward pass")
    add_runtime_options(embed, decode=False)
    embed.add_argument("--partition-size", type=int, default=None,
                       help="inputs per partition, the unit of work and of resume "
                            "(default: about 4 per worker, between 16 and 1024; "
                            "a resumed folder keeps its own)")
    where = embed.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1,
                       help="1 (default): embed in this process; N > 1: start "
                            "a LocalCluster of N processes, 1 thread each")
    where.add_argument("--scheduler", help="address of a running Dask scheduler "
                                           "(tcp://host:8786)")
    embed.add_argument("--connect-timeout", type=float, default=10.0,
                       help="seconds to wait for --scheduler")
    embed.add_argument("--skip-bad", action="store_true",
                       help="leave unreadable inputs out, listed in OUT/_skipped.csv")
    embed.add_argument("--no-progress", action="store_true")


# --- transformer and cluster ---------------------------------------------------

def build_transformer(args, modality: str):
    """The transformer for ``modality`` from the command's options."""
    from sktransfer.cli.fit import _weights

    if modality == "image":
        from sktransfer import PretrainedImageFeatures

        transformer = PretrainedImageFeatures(
            args.model or BUNDLED_IMAGE, weights=_weights(args.weights),
            cache=False)
    else:
        from sktransfer import PretrainedTextEmbeddings

        transformer = PretrainedTextEmbeddings(args.model or BUNDLED_TEXT,
                                               cache=False)
    if args.batch_size is not None:
        transformer.set_params(batch_size=args.batch_size)
    if args.runtime is not None:  # the transformer's fit checks the value
        transformer.set_params(runtime=args.runtime)
    return transformer


# Our own LocalCluster has no dashboard to feed: without the workers' stack
# sampler (every 10 ms) and with the event-loop watchdog ticking every second
# instead of every 20 ms, two one-thread workers embed ~5% faster on 2 cores
# (benchmarks/RESULTS.md, scale-out). A cluster given with --scheduler keeps
# its own configuration.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    # The nanny sets Dask's environment before a worker starts (one thread
    # per library: kept) but not MALLOC_TRIM_THRESHOLD_=65536 (None unsets
    # it), which makes glibc hand every freed decode buffer back to the OS
    # only to fault it in again: 5-7% slower here; worker memory stays flat
    # in N without it (RESULTS.md D3).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


@contextlib.contextmanager
def connect(scheduler=None, workers: int = 1, timeout: float = 10.0):
    """A ``distributed.Client``: to ``scheduler``, or to a new LocalCluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise MissingDependencyError("sktransfer embed needs Dask: pip install "
                          "'sktransfer[dask]'") from exc
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerUnreachableError(
                f"no Dask scheduler answers at {scheduler!r} "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
            ) from None
        with client:
            yield client
        return
    if workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {workers}")
    import dask

    # Workers that outlive close() by a few seconds are killed: not news.
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    # the scheduler's HTTP server on any free port: two commands at once (or
    # another cluster on 8787) must not collide
    with dask.config.set(LOCAL_CLUSTER_CONFIG), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(_quiet_worker_logs)
        yield client


def _n_workers(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def _quiet_worker_logs() -> None:
    """Our workers' failures reach the user as the client's one-line error."""
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)


# --- the command ---------------------------------------------------------------

def _skipped_rows(keys: pd.DataFrame, errors,
                  start: int = 0) -> tuple[list[int], list[dict]]:
    """Positions of the good rows, and a record per skipped one (its keys,
    and the error naming its row of the whole input: ``start`` + position)."""
    if errors is None:
        return list(range(len(keys))), []
    good = [i for i, error in enumerate(errors) if error is None]
    skipped = [{**{c: _plain(keys[c].iloc[i]) for c in keys.columns},
                "error": _renumbered(error, start + i)}
               for i, error in enumerate(errors) if error is not None]
    return good, skipped


def _renumbered(error: str, row: int) -> str:
    """A skipped input's error, as one input was embedded at a time ("image
    0: ..."), with the input's row in the whole input instead."""
    return re.sub(r"^(image|text) 0\b", lambda m: f"{m.group(1)} {row}", error,
                  count=1)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _embed_missing(client, keys, column, transformer, store, todo, skip_bad,
                   progress):
    """Compute the partitions ``todo`` and write each one as it arrives.

    One task per partition (:func:`sktransfer.dask.embed_items`) takes the
    partition's inputs and returns a plain float32 array; the fitted
    transformer is sent to every worker once. A bounded number of partitions
    is in flight (two per worker), so neither the scheduler nor the workers
    ever hold the whole input or output, however large.
    """
    from distributed import as_completed

    from sktransfer.dask import embed_items

    on_error = "skip" if skip_bad else "raise"
    shared = client.scatter(transformer, broadcast=True, hash=False)
    queue = deque(todo)
    window = max(4, 2 * len(client.scheduler_info().get("workers", {})))
    running, index_of = as_completed(), {}

    def submit():
        while running.count() < window and queue:
            index = queue.popleft()
            rows = store.rows(index)
            items = keys[column].iloc[rows.start:rows.stop].tolist()
            future = client.submit(embed_items, items, shared, on_error,
                                   key=f"sktransfer-embed-{index}-{uuid.uuid4().hex}")
            index_of[future.key] = index
            running.add(future)

    submit()
    for future in running:
        index = index_of.pop(future.key)
        _write_part(keys, store, index, *future.result())
        progress.update(len(store.rows(index)))
        future.release()
        submit()


def _embed_in_process(keys, column, transformer, store, todo, skip_bad, progress):
    """``_embed_missing`` without a cluster: the partitions one after the
    other in this process (with all of torch's threads), each written as it
    is done."""
    from sktransfer.dask import embed_items

    on_error = "skip" if skip_bad else "raise"
    for index in todo:
        rows = store.rows(index)
        items = keys[column].iloc[rows.start:rows.stop].tolist()
        _write_part(keys, store, index, *embed_items(items, transformer, on_error))
        progress.update(len(rows))


def _write_part(keys, store, index, features, errors) -> None:
    rows = store.rows(index)
    part = keys.iloc[rows.start:rows.stop]
    good, skipped = _skipped_rows(part, errors, rows.start)
    if skipped:
        part, features = part.iloc[good], features[good]
    store.write(index, part, features, skipped)


#: The default partition size gives each worker about this many partitions.
PARTS_PER_WORKER = 4
MIN_PARTITION, MAX_PARTITION = 16, 1024


def default_partition_size(n_inputs: int, n_workers: int) -> int:
    """``ceil(n / (PARTS_PER_WORKER * workers))`` within [16, 1024]: every
    worker gets several partitions, even for a small folder."""
    size = -(-n_inputs // (PARTS_PER_WORKER * max(1, n_workers)))
    return min(MAX_PARTITION, max(MIN_PARTITION, size))


def fit_sample(keys: pd.DataFrame, column: str, modality: str,
               skip_bad: bool) -> list:
    """The input ``fit`` validates: the first one, or with ``skip_bad`` the
    first that can be used (an existing regular file, a URL, a text)."""
    values = keys[column]
    if not skip_bad:
        return values.dropna().head(1).tolist() or values.head(1).tolist()
    for value in values:
        if modality == "text":
            good = isinstance(value, str)
        else:
            good = isinstance(value, str) and ("://" in value or
                                               os.path.isfile(value))
        if good:
            return [value]
    raise InvalidInputError(f"none of the {len(values)} inputs can be read")


#: Below about this many inputs, a LocalCluster's start-up (scheduler, nannies,
#: a model load per worker: ~9 s on 2 cores) costs more than its workers save
#: over one in-process run: measured in benchmarks/RESULTS.md ("embed: the
#: LocalCluster crossover"; the lines cross at ~3,300 2.5-MP photos on 2 cores).
LOCAL_CLUSTER_CROSSOVER = 3000


def _note_small_input(n_inputs: int, args) -> None:
    if args.scheduler is None and args.workers > 1 and \
            n_inputs < LOCAL_CLUSTER_CROSSOVER:
        print(f"sktransfer: note: {n_inputs} inputs: below about "
              f"{LOCAL_CLUSTER_CROSSOVER}, a LocalCluster of {args.workers} workers "
              f"takes longer to start than it saves; --workers 1 (the default) "
              f"embeds in this process, without one", file=sys.stderr)


def run_embed(args) -> None:
    from tqdm.auto import tqdm

    from sktransfer.cli._embed_store import (
        EmbedStore,
        check_folder,
        input_signature,
        manifest_for,
        saved_partition_size,
    )
    from sktransfer.dask import fit_on_workers

    if args.partition_size is not None and args.partition_size < 1:
        raise InvalidInputError(
            f"--partition-size must be >= 1, got {args.partition_size}")
    keys, column, modality = read_inputs(args.data, args.column, args.modality)
    if modality == "text" and not args.skip_bad:
        _check_texts(keys)
    check_folder(args.out)
    sample = fit_sample(keys, column, modality, args.skip_bad)
    _note_small_input(len(keys), args)
    in_process = args.scheduler is None and args.workers == 1
    with (contextlib.nullcontext() if in_process else
          connect(args.scheduler, args.workers, args.connect_timeout)) as client:
        transformer = build_transformer(args, modality)
        # every worker loads the model at once (each needs it for its parts)
        fitted = (transformer.fit(sample) if in_process
                  else fit_on_workers(client, transformer, sample))
        size = (args.partition_size or saved_partition_size(args.out)
                or default_partition_size(len(keys), 1 if in_process
                                          else _n_workers(client)))
        values = keys[column]

        def signature(index):
            rows = store.rows(index)
            return input_signature(values.iloc[rows.start:rows.stop].tolist(),
                                   modality)

        store = EmbedStore(args.out, manifest_for(fitted, keys, column, size),
                           fitted.get_feature_names_out(), signature)
        todo = [i for i in range(store.n_partitions)
                if store.part_info(i, verify=True) is None]
        done = len(keys) - sum(len(store.rows(i)) for i in todo)
        started = time.perf_counter()
        with tqdm(total=len(keys), initial=done, unit="row", desc="embedding",
                  disable=args.no_progress, file=sys.stderr) as progress:
            if todo:
                embed = _embed_in_process if in_process else functools.partial(
                    _embed_missing, client)
                embed(keys, column, fitted, store, todo, args.skip_bad, progress)
        seconds = time.perf_counter() - started
    skipped = store.write_skipped()
    resumed = store.n_partitions - len(todo)
    print(f"embedded {len(keys) - skipped} of {len(keys)} inputs "
          f"({fitted.n_features_out_} features) into {args.out}: "
          f"{store.n_partitions} partitions, {resumed} already done; "
          f"{len(keys) - done} inputs in {seconds:.1f} s"
          + (f"; {skipped} skipped, listed in {Path(args.out) / '_skipped.csv'}"
             if skipped else ""))
