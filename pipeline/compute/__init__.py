"""Compute: the one place that creates Dask clients and clusters.

Local CPU (the default), Dask-CUDA with per-GPU worker set-up, dask-jobqueue (SLURM, PBS) from the
profiles of ``deploy/jobqueue.yaml``, or a scheduler address; see :func:`connect`.
"""

from pipeline.compute.check import check_cluster, oversubscription_warning
from pipeline.compute.client_check import check_client
from pipeline.compute.cluster import connect, default_n_workers, in_process_client
from pipeline.compute.keras_backend import (
    SUPPORTED_BACKENDS,
    check_keras_backend,
    import_keras,
    worker_backend_note,
)
from pipeline.compute.profiles import Profile, ProfileError, load_profile, load_profiles
from pipeline.compute.quiet import QuietTensorFlow, quiet_tensorflow
from pipeline.compute.workers import results_as_completed, workers_died

__all__ = [
    "SUPPORTED_BACKENDS",
    "Profile",
    "ProfileError",
    "QuietTensorFlow",
    "check_client",
    "check_cluster",
    "check_keras_backend",
    "connect",
    "default_n_workers",
    "import_keras",
    "in_process_client",
    "load_profile",
    "load_profiles",
    "oversubscription_warning",
    "quiet_tensorflow",
    "results_as_completed",
    "worker_backend_note",
    "workers_died",
]
