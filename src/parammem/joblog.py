"""Per-job process setup shared by the workflow scripts."""

from __future__ import annotations

import logging
import os
import sys


def start_job(log_path: str, threads: int) -> None:
    """Route stderr and logging to the rule's log and size torch's thread pool to the job.

    One BLAS thread per job thread: oversubscribed pools on a shared node ran up to 10x
    slower (measured on the 2-core CI machine). Call before importing torch.
    """
    os.environ["OMP_NUM_THREADS"] = str(max(1, int(threads)))
    sys.stderr = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stdout = sys.stderr  # trainers print their logs to stdout
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
