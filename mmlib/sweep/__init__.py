"""``python -m mmlib sweep``: a grid of runs as separate processes, leased in the shared results store.

    python -m mmlib sweep --methods concat,ours --seeds 10 --set epochs=15 --data noise=pix=2.0
    python -m mmlib sweep grid.toml                          # the same grid from a file
    python -m mmlib sweep grid.toml --launcher submitit --partition gpu --time 240

The grid is methods x datasets x seeds x every listed value of every parameter. A grid file is
TOML; a list is an axis, anything else a fixed value::

    methods = ["concat", "ours"]
    datasets = ["mfeat"]
    seeds = 10                     # 0 .. 9; or a list [0, 4], or a range "5-9"
    [train]                        # fields of mmlib.config.TrainConfig
    epochs = 15
    modalities = ["fou,mor", "pix,fou,mor"]
    [options.ours]                 # a method's own options
    tau = [0.1, 0.2, 0.3]
    [data.mfeat]                   # a dataset's loader options
    noise = "pix=2.0"
    [[run]]                        # explicit runs (what write_grid exports), in addition to the grid
    method = "sum"
    seed = 3

Every entry is checked before anything starts: an unknown method, dataset, parameter or option
stops the sweep with the entry named. The command line's ``--methods``, ``--seeds``,
``--datasets``, ``--set``, ``--option`` and ``--data`` add to (or replace) the file's entries.

Each run is trained in its own process (``python -m mmlib.sweep.child``, which calls
:func:`mmlib.train.train` with a checkpoint directory and ``resume``). Before training, the run is
leased in the store (:mod:`mmlib.sweep.lease`), so sweeps on any number of machines sharing the store
never train one run twice; a run whose record is stored is skipped; a run whose lease is stale
(its sweep was killed) is taken over and resumes from its last checkpoint; a run another sweep
holds is waited for. Launchers: ``local`` runs one process per GPU (``CUDA_VISIBLE_DEVICES``
sharding; ``--per-gpu N`` to share a GPU; ``--workers N`` processes on a CPU-only machine) through
a thread pool that waits on the processes; ``submitit`` sends the runs to SLURM as one job array.
The summary at the end lists what ran, what was skipped and what failed, with the reason and log.

Modules: :mod:`~mmlib.sweep.grid` (the TOML grid), :mod:`~mmlib.sweep.lease` (at most one process
trains a run), :mod:`~mmlib.sweep.launch` (a run in a child process; local and SLURM launchers),
:mod:`~mmlib.sweep.run` (the sweep's loop), :mod:`~mmlib.sweep.cli` (the command line) and
:mod:`~mmlib.sweep.child` (the training process).
"""

from mmlib.sweep.cli import main
from mmlib.sweep.grid import GridError, build_config, expand_grid, read_grid_file, write_grid
from mmlib.sweep.launch import (
    FAILED, HELD, RAN, SKIPPED, LocalLauncher, Outcome, Store, execute, local_slots, visible_gpus,
)
from mmlib.sweep.run import run_sweep, summary, sweep_records

__all__ = [
    "FAILED", "HELD", "RAN", "SKIPPED", "GridError", "LocalLauncher", "Outcome", "Store", "build_config", "execute",
    "expand_grid", "local_slots", "main", "read_grid_file", "run_sweep", "summary", "sweep_records", "visible_gpus",
    "write_grid",
]
