"""The engines that run fold jobs, behind one interface: ``run(jobs, on_done)``.

``run`` returns once every job has an outcome; ``on_done(job, outcome)`` is called in the driver's
process as each one finishes (in any order). A job that the engine lost (a killed worker, a Slurm time
limit) gets a ``failed`` outcome with the engine's error. mer schedules nothing itself: each engine
places and runs the jobs.

- :class:`LocalBackend`: a process pool on this machine; with several visible GPUs, one job per GPU
  (``CUDA_VISIBLE_DEVICES`` per worker).
- :class:`RayBackend`: Ray core tasks with ``num_cpus`` / ``num_gpus``, on a running cluster.
- :class:`SlurmBackend`: submitit, one job array per call of ``run`` (a sweep, and one per retry round).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mer.errors import OptionValueError, UnavailableError
from mer.sweep.jobs import FoldJob, failed_outcome, run_fold_job

OnDone = Callable[[FoldJob, dict[str, Any]], None]

# Environment that fold jobs need to see what the driver sees (the dataset registry lives under
# MER_HOME); passed to Ray workers, which inherit the environment of `ray start`, not of the driver.
PASS_ENV = ("MER_HOME", "PYTHONPATH", "HF_HUB_OFFLINE", "HF_HOME", "OMP_NUM_THREADS", "TORCH_HOME")


class Backend:
    """Base of the engines; a context manager so that a cluster connection is closed."""

    name = "?"

    def run(self, jobs: Sequence[FoldJob], on_done: OnDone) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Release the engine (disconnect from Ray...)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def visible_gpus() -> list[str]:
    """GPU ids this process may use (``CUDA_VISIBLE_DEVICES`` when set, else every device torch sees)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in (x.strip() for x in env.split(",")) if g and g != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _local_init(slots: Any, gpus: list[str]) -> None:
    """Pool worker start: take a slot; with GPUs, see only this slot's GPU (before CUDA starts)."""
    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]


@dataclass
class LocalBackend(Backend):
    """A process pool on this machine.

    Attributes:
        workers: Jobs at once (None: one per visible GPU, else one per CPU core).
        threads: Torch threads per job (None: the cores shared between the workers).
    """

    workers: int | None = None
    threads: int | None = None
    name = "local"

    def plan(self) -> tuple[int, int, list[str]]:
        """(workers, threads per job, GPU ids handed out round-robin)."""
        from mer.protocols.runner import available_cores

        gpus = visible_gpus()
        k = self.workers or (len(gpus) if gpus else available_cores())
        return max(1, k), self.threads or max(1, available_cores() // max(1, k)), gpus

    def describe(self) -> str:
        k, t, gpus = self.plan()
        where = f"GPUs {','.join(gpus)} (one per worker)" if gpus else "CPU"
        return f"local: {k} worker process(es), {t} thread(s) each, {where}"

    def run(self, jobs: Sequence[FoldJob], on_done: OnDone) -> None:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if not jobs:
            return
        k, threads, gpus = self.plan()
        k = min(k, len(jobs))
        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        with ProcessPoolExecutor(
            k, mp_context=ctx, initializer=_local_init, initargs=(ctx.Value("i", 0), gpus)
        ) as pool:
            futures = {pool.submit(run_fold_job, replace(j, threads=j.threads or threads)): j for j in jobs}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = futures[fut]
                    try:
                        outcome = fut.result()
                    except Exception as e:  # the worker died (killed, out of memory)
                        outcome = failed_outcome(job, f"{type(e).__name__}: {e}", traceback.format_exc())
                    on_done(job, outcome)


@dataclass
class RayBackend(Backend):
    """Ray core tasks on a running cluster (``ray start --head`` on one machine, ``ray start
    --address HEAD:PORT`` on the others).

    Attributes:
        address: ``auto`` (the cluster this machine belongs to) or ``HOST:PORT`` of the head.
        cpus: ``num_cpus`` of each task (also its torch threads).
        gpus: ``num_gpus`` of each task (None: 1 when the cluster has GPUs, else 0).
    """

    address: str = "auto"
    cpus: int = 1
    gpus: float | None = None
    name = "ray"
    _ray: Any = field(default=None, repr=False)

    def _connect(self) -> Any:
        if self._ray is None:
            try:
                import ray
            except ImportError:
                raise UnavailableError("--backend ray needs Ray: pip install 'mer[cluster]'") from None
            env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
            ray.init(
                address=self.address,
                runtime_env={"env_vars": env},
                log_to_driver=False,
                include_dashboard=False,
            )
            self._ray = ray
        return self._ray

    def task_gpus(self) -> float:
        if self.gpus is not None:
            return self.gpus
        return 1.0 if self._connect().cluster_resources().get("GPU", 0) > 0 else 0.0

    def describe(self) -> str:
        gpus = "auto" if self.gpus is None else self.gpus
        return f"ray: address {self.address}, {self.cpus} CPU(s) and {gpus} GPU(s) per task"

    def run(self, jobs: Sequence[FoldJob], on_done: OnDone) -> None:
        if not jobs:
            return
        ray = self._connect()
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.task_gpus(), max_retries=0)(run_fold_job)
        refs = {task.remote(replace(j, threads=j.threads or self.cpus)): j for j in jobs}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                job = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as e:  # the worker died, or the task could not run
                    outcome = failed_outcome(job, f"{type(e).__name__}: {e}", traceback.format_exc())
                on_done(job, outcome)

    def close(self) -> None:
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None


@dataclass
class SlurmBackend(Backend):
    """Slurm through submitit: one job array per :meth:`run`; each array task trains one fold.

    Attributes:
        folder: submitit's folder (pickles, sbatch files, stdout/stderr of each task); the driver
            copies each task's stdout/stderr to ``<run>/logs/fold_NNN.slurm.{out,err}``.
        partition: ``--partition`` (None: the cluster's default).
        gpus: GPUs per task.
        cpus: CPUs per task (also the job's torch threads).
        mem_gb: Memory per task in GB (None: the partition's default).
        time_min: Time limit per task in minutes.
        max_parallel: Array tasks running at once (``%N`` of ``--array``).
        account: ``--account`` (None: the user's default).
        cluster: "slurm", or "local" (submitit's local executor: subprocesses on this machine, for tests).
        poll_s: Seconds between status checks.
    """

    folder: Path = Path("runs/.slurm")
    partition: str | None = None
    gpus: int = 1
    cpus: int = 8
    mem_gb: float | None = None
    time_min: int = 240
    max_parallel: int = 64
    account: str | None = None
    cluster: str = "slurm"
    poll_s: float = 5.0
    name = "slurm"

    def parameters(self) -> dict[str, Any]:
        """sbatch parameters (submitit's Slurm names)."""
        params: dict[str, Any] = {
            "job_name": "mer-sweep",
            "time": int(self.time_min),
            "cpus_per_task": int(self.cpus),
            "gpus_per_node": int(self.gpus),
            "array_parallelism": int(self.max_parallel),
            "ntasks_per_node": 1,
        }
        if self.gpus == 0:
            del params["gpus_per_node"]
        if self.partition:
            params["partition"] = self.partition
        if self.account:
            params["account"] = self.account
        if self.mem_gb is not None:
            params["mem"] = f"{int(self.mem_gb * 1024)}MB" if self.mem_gb < 1 else f"{int(self.mem_gb)}GB"
        return params

    def sbatch_text(self, n_jobs: int) -> str:
        """The sbatch script an array of ``n_jobs`` tasks is submitted with (what ``--dry-run`` prints)."""
        import shlex
        import sys

        from submitit.slurm.slurm import _make_sbatch_string

        command = " ".join(
            [shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(self.folder))]
        )
        return _make_sbatch_string(command=command, folder=self.folder, map_count=n_jobs, **self.parameters())

    def describe(self) -> str:
        p = self.parameters()
        return (
            "slurm (submitit"
            + (", local executor" if self.cluster == "local" else "")
            + "): "
            + ", ".join(f"{k}={v}" for k, v in p.items() if k != "job_name")
        )

    def _executor(self) -> Any:
        try:
            import submitit
        except ImportError:
            raise UnavailableError("--backend slurm needs submitit: pip install 'mer[cluster]'") from None
        if self.cluster == "local":
            ex = submitit.LocalExecutor(folder=self.folder)
            ex.update_parameters(timeout_min=int(self.time_min), gpus_per_node=0)
            return ex
        ex = submitit.SlurmExecutor(folder=self.folder)
        ex.update_parameters(**self.parameters())
        return ex

    def run(self, jobs: Sequence[FoldJob], on_done: OnDone) -> None:
        if not jobs:
            return
        ex = self._executor()
        jobs = [replace(j, threads=j.threads or self.cpus) for j in jobs]
        with ex.batch():  # one array for all of them
            handles = [ex.submit(run_fold_job, j) for j in jobs]
        pending = dict(zip(handles, jobs, strict=True))
        while pending:
            for handle in [h for h in pending if h.done()]:
                job = pending.pop(handle)
                try:
                    outcome = handle.result()
                except Exception as e:  # time limit, node failure, out of memory
                    outcome = failed_outcome(job, f"{type(e).__name__}: {e}", traceback.format_exc())
                _copy_logs(handle, job)
                on_done(job, outcome)
            if pending:
                time.sleep(self.poll_s)


def _copy_logs(handle: Any, job: FoldJob) -> None:
    """The task's stdout / stderr beside the fold's own log, under the run directory."""
    logs = job.run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for src, suffix in ((handle.paths.stdout, "out"), (handle.paths.stderr, "err")):
        if Path(src).exists():
            (logs / f"fold_{job.fold:03d}.slurm.{suffix}").write_bytes(Path(src).read_bytes())


BACKENDS = ("local", "ray", "slurm")


def make_backend(name: str, settings: dict[str, Any], flags: dict[str, str] | None = None) -> Backend:
    """An engine by name with its settings (None: the engine's default); ``flags`` names each setting
    in messages (``{"cpus": "--cpus-per-job"}``).

    Raises:
        OptionValueError: an unknown engine, or a setting it does not have (rather than ignoring it).
    """
    classes = {"local": LocalBackend, "ray": RayBackend, "slurm": SlurmBackend}
    if name not in classes:
        raise OptionValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {name!r}")
    cls = classes[name]
    given = {k: v for k, v in settings.items() if v is not None}
    foreign = sorted(k for k in given if k not in cls.__dataclass_fields__ or k.startswith("_"))
    if foreign:
        names = ", ".join((flags or {}).get(k, k) for k in foreign)
        raise OptionValueError(f"--backend {name} does not use {names}")
    return cls(**given)
