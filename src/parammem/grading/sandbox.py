"""Run untrusted Python in a throw-away process: one process per candidate.

Each candidate runs as its own process, in its own session / process group and its own
temporary directory, with rlimits (address space, CPU time, processes, file size, open
files, no core dumps), a wall-clock timeout that kills it and everything it started, and
capped stdout/stderr (beyond the cap it is killed: "output limit exceeded"). A thread
pool drives many candidates at once.

Isolation, strongest first (chosen once per grader process, see `isolation_mode`):

``full``  (root)      no network (an empty network namespace); a fresh random uid/gid
                      per candidate that owns nothing, so it cannot write files it does
                      not own, cannot signal the grader or other candidates, and
                      RLIMIT_NPROC binds (it does not for uid 0). The only capability
                      kept is CAP_DAC_READ_SEARCH, so the interpreter stays readable
                      where it lives under a private home (e.g. pyenv); no_new_privs.
``userns`` (non-root) ``unshare --user --map-root-user --net --pid --fork --kill-child``:
                      network and pid namespaces without privileges.
``plain``             rlimits only; ``socket`` is replaced by a stub in the harness.

How a candidate is started:

- fork server (default under ``full``): one warm interpreter per worker, started with
  ``subprocess.Popen(..., start_new_session=True)`` inside ``unshare --net``, forks each
  candidate; the child calls setsid, sets the rlimits, drops to the fresh uid and runs
  the harness (`_harness.serve`). The server is a child subreaper, so whatever a
  candidate leaves behind is killed (kill(-1) as the candidate's uid) before the next.
  A few milliseconds per candidate instead of an interpreter start-up.
- fresh process (``forkserver=False``, env PARAMMEM_SANDBOX_FORKSERVER=0, and the other
  modes): ``subprocess.Popen`` with ``start_new_session=True`` and a ``preexec_fn`` that
  sets the rlimits, through ``unshare --net --pid --fork --kill-child`` and ``setpriv``
  (fresh uid) under ``full``; the candidate's pid namespace dies with it.

`RunResult.network` records which network guard applied ("netns" or "socket-blocked").
The harness (``_harness.py``) reports through a private pipe; each record carries a
random nonce and the final ``done`` record is written only after the last test, so
"passed" never depends on the exit code or on anything the candidate prints.
"""

from __future__ import annotations

import ast
import atexit
import marshal
import os
import queue
import resource
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HARNESS = str(Path(__file__).with_name("_harness.py"))
# The child reads (harness code object, job) from stdin: no source to compile, no
# harness file to find, nothing on sys.path that could shadow the stdlib.
_BOOT = (
    "import marshal,sys\n"
    "c,j=marshal.loads(sys.stdin.buffer.read())\n"
    "g={'__name__':'__pm_harness__'}\n"
    "exec(c,g)\n"
    "g['main'](j)\n"
)
_harness_code = None


def _harness() -> Any:
    global _harness_code
    if _harness_code is None:
        _harness_code = compile(Path(HARNESS).read_text(), HARNESS, "exec")
    return _harness_code


def _site_dirs() -> list[str]:
    """The grader's site-packages, so candidates can import numpy & co. under -S."""
    return [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))]


_MODES = ("full", "userns", "plain")


@dataclass(frozen=True)
class Limits:
    """Per-candidate resource limits."""

    timeout: float = 5.0  # seconds of wall clock for the program and all its tests
    memory_mb: int = 2048  # RLIMIT_AS
    nproc: int = 16  # RLIMIT_NPROC (processes + threads of the sandbox uid)
    fsize_mb: int = 16  # RLIMIT_FSIZE
    nofile: int = 128  # RLIMIT_NOFILE
    output_bytes: int = 1 << 20  # stdout+stderr beyond this: killed, "output limit"
    startup_grace: float = 2.0  # wall clock allowed on top of `timeout` for start-up


@dataclass
class RunResult:
    """What came back from one sandboxed run (uninterpreted; see `grading.code`)."""

    records: list[dict[str, Any]] = field(default_factory=list)  # nonce-checked records
    done: bool = False  # the harness wrote its final record
    timed_out: bool = False  # killed by the wall-clock timeout
    output_exceeded: bool = False  # killed for printing too much
    returncode: int | None = None
    stdout: str = ""  # first few KB only
    stderr: str = ""
    seconds: float = 0.0
    isolation: str = ""  # full / userns / plain
    network: str = ""  # netns / socket-blocked
    uid: int | None = None  # the fresh uid the candidate ran as (full isolation only)
    error: str = ""  # the grader could not run the candidate at all

    @property
    def exit_reason(self) -> str:
        rc = self.returncode
        if rc is None:
            return "did not exit"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        if rc > 128 and rc - 128 in signal.valid_signals():
            return f"killed by {signal.Signals(rc - 128).name}"
        return f"exited with code {rc}"


_mode_lock = threading.Lock()
_mode_cache: dict[str, str] = {}


def _base_cmd(mode: str, uid: int | None) -> list[str]:
    if mode == "full":
        return [
            "unshare",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            "--no-new-privs",
            "--",
        ]
    if mode == "userns":
        return [
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
        ]
    return []


def _probe(mode: str, python: str) -> bool:
    uid = _fresh_uid() if mode == "full" else None
    cmd = _base_cmd(mode, uid) + [python, "-I", "-S", "-c", "import marshal"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=30, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def isolation_mode(python: str | None = None, requested: str | None = None) -> str:
    """The strongest isolation this machine allows (probed once, then cached).

    `requested` (or env PARAMMEM_SANDBOX) forces a mode: full / userns / plain / auto.
    A forced mode that does not work raises RuntimeError rather than silently weakening.
    """
    python = python or sys.executable
    requested = (requested or os.environ.get("PARAMMEM_SANDBOX") or "auto").lower()
    if requested not in _MODES + ("auto",):
        raise ValueError(f"unknown sandbox isolation {requested!r}; use one of {_MODES}")
    key = f"{requested}:{python}"
    with _mode_lock:
        if key in _mode_cache:
            return _mode_cache[key]
        if requested != "auto":
            if requested != "plain" and not _probe(requested, python):
                raise RuntimeError(f"sandbox isolation {requested!r} does not work here")
            mode = requested
        else:
            have = shutil.which("unshare") is not None
            if have and os.geteuid() == 0 and shutil.which("setpriv") and _probe("full", python):
                mode = "full"
            elif have and os.geteuid() != 0 and _probe("userns", python):
                mode = "userns"
            else:
                mode = "plain"
        _mode_cache[key] = mode
        return mode


def _fresh_uid() -> int:
    # A uid no account uses, fresh per candidate: its processes and files are its own.
    return 1_500_000_000 + secrets.randbelow(500_000_000)


def _preexec(limits: Limits, enforce_nproc: bool):
    mem = int(limits.memory_mb) << 20
    cpu = int(limits.timeout + limits.startup_grace) + 1
    fsize = int(limits.fsize_mb) << 20
    settings = [
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (fsize, fsize)),
        (resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    if enforce_nproc:
        settings.append((resource.RLIMIT_NPROC, (limits.nproc, limits.nproc)))

    def apply() -> None:  # runs in the child between fork and exec
        for which, value in settings:
            try:
                resource.setrlimit(which, value)
            except (ValueError, OSError):
                pass

    return apply


_CHILD_ENV_KEEP = ("LANG", "LC_ALL", "TZ")


class _Zygote:
    """A warm fork server (see `_harness.serve`), used by one worker thread at a time."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent
        try:
            config = {"mode": "serve", "sock": child.fileno(), "sys_path": _site_dirs()}
            self.proc = subprocess.Popen(
                ["unshare", "--net", "--", python, "-I", "-S", "-c", _BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                env=env,
                start_new_session=True,
                pass_fds=(child.fileno(),),
            )
        finally:
            child.close()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(marshal.dumps((_harness(), config)))
            self.proc.stdin.close()
            self.sock.settimeout(30)
            hello = self.sock.recv(1 << 10)
            if not hello or marshal.loads(hello)[0] != "ready":
                raise OSError("fork server did not start")
            self.sock.settimeout(None)
        except (OSError, ValueError, EOFError):
            self.close()
            raise

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


class Sandbox:
    """Runs harness jobs, one sandboxed process each, `workers` at a time.

    With full isolation candidates are forked from warm fork servers (one per worker,
    started on first use); `forkserver=False` (or env PARAMMEM_SANDBOX_FORKSERVER=0)
    starts a fresh interpreter per candidate through ``Popen`` instead, as the other
    isolation modes always do.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        workers: int = 2,
        python: str | None = None,
        isolation: str | None = None,
        forkserver: bool | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.workers = max(1, int(workers))
        self.python = python or sys.executable
        self.mode = isolation_mode(self.python, isolation)
        if forkserver is None:
            forkserver = os.environ.get("PARAMMEM_SANDBOX_FORKSERVER", "1") != "0"
        self.forkserver = bool(forkserver) and self.mode == "full" and hasattr(os, "pidfd_open")
        # Empty work dirs are reused: creating and removing a directory costs more than
        # starting the interpreter on some file systems.
        self._free_dirs: list[str] = []
        self._dirs_lock = threading.Lock()
        self._zygotes: queue.SimpleQueue[_Zygote] = queue.SimpleQueue()
        self._n_zygotes = 0
        self._zygote_lock = threading.Lock()
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the fork servers; remove the pooled (empty) work directories."""
        while True:
            try:
                self._zygotes.get_nowait().close()
            except queue.Empty:
                break
        with self._zygote_lock:
            self._n_zygotes = 0
        with self._dirs_lock:
            dirs, self._free_dirs = self._free_dirs, []
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

    def _take_dir(self) -> str:
        with self._dirs_lock:
            if self._free_dirs:
                return self._free_dirs.pop()
        return tempfile.mkdtemp(prefix="pm-sbx-")

    def _give_dir(self, path: str) -> None:
        try:
            with os.scandir(path) as it:
                empty = next(it, None) is None
        except OSError:
            empty = False
        if empty:
            with self._dirs_lock:
                if len(self._free_dirs) < 4 * self.workers:
                    self._free_dirs.append(path)
                    return
        shutil.rmtree(path, ignore_errors=True)

    @property
    def network(self) -> str:
        return "socket-blocked" if self.mode == "plain" else "netns"

    def run_many(self, jobs: Sequence[dict[str, Any]]) -> list[RunResult]:
        if not jobs:
            return []
        if self.workers == 1 or len(jobs) == 1:
            return [self.run(job) for job in jobs]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            return list(pool.map(self.run, jobs))

    def _child_env(self, workdir: str) -> dict[str, str]:
        env = {k: os.environ[k] for k in _CHILD_ENV_KEEP if k in os.environ}
        env.update(
            PATH="/usr/local/bin:/usr/bin:/bin",
            HOME=workdir,
            TMPDIR=workdir,
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        env.setdefault("LANG", "C.UTF-8")
        return env

    def run(self, job: dict[str, Any]) -> RunResult:
        """Run one harness job (see `_harness.py` for the job format)."""
        timeout = float(job.get("timeout", self.limits.timeout))
        result = RunResult(isolation=self.mode, network=self.network)
        result.uid = _fresh_uid() if self.mode == "full" else None
        workdir = self._take_dir()
        start = time.monotonic()
        try:
            if result.uid is not None:
                os.chown(workdir, result.uid, result.uid)
            os.chmod(workdir, 0o700)
            for _attempt in range(2 if self.forkserver else 0):
                try:
                    self._run_forked(job, timeout, workdir, result)
                    return result
                except _ForkServerError:  # that server was dropped; try a new one once
                    result.records, result.error = [], ""
            if self.forkserver:
                self.forkserver = False  # fall back for good; the fresh path works
            self._run_exec(job, timeout, workdir, result)
            return result
        except OSError as exc:
            result.error = f"could not run the sandbox: {exc}"
            return result
        finally:
            self._give_dir(workdir)
            result.seconds = time.monotonic() - start

    def _payload(
        self, job: dict[str, Any], timeout: float, fd: int, nonce: str, with_code: bool = True
    ) -> bytes:
        payload = dict(job, nonce=nonce, fd=fd, timeout=timeout, sys_path=_site_dirs())
        if self.mode == "plain":
            payload["block_network"] = True
        if self.mode == "userns":
            # unshare must fork first, so RLIMIT_NPROC is set by the harness: the uid is
            # the (shared) real user's, so no new processes at all.
            payload["nproc"] = 0
        if not with_code:  # a fork-server child already has the harness
            return marshal.dumps((None, payload))
        # A code object only suits the interpreter that compiled it; others get source.
        code = _harness() if self.python == sys.executable else Path(HARNESS).read_text()
        return marshal.dumps((code, payload))

    def _rlimits(self) -> list[tuple[str, int]]:
        lim = self.limits
        return [
            ("RLIMIT_AS", int(lim.memory_mb) << 20),
            ("RLIMIT_CPU", int(lim.timeout + lim.startup_grace) + 1),
            ("RLIMIT_FSIZE", int(lim.fsize_mb) << 20),
            ("RLIMIT_NOFILE", int(lim.nofile)),
            ("RLIMIT_CORE", 0),
            ("RLIMIT_NPROC", int(lim.nproc)),
        ]

    # -- fork-server path ----------------------------------------------------------------
    def _zygote(self) -> _Zygote:
        try:
            return self._zygotes.get_nowait()
        except queue.Empty:
            pass
        with self._zygote_lock:
            if self._n_zygotes < self.workers:
                self._n_zygotes += 1
                try:
                    return _Zygote(self.python, self._child_env("/"))
                except (OSError, ValueError, EOFError) as exc:
                    self._n_zygotes -= 1
                    raise _ForkServerError(str(exc)) from exc
        return self._zygotes.get()

    def _drop_zygote(self, z: _Zygote) -> None:
        z.close()
        with self._zygote_lock:
            self._n_zygotes -= 1

    def _run_forked(self, job: dict[str, Any], timeout: float, workdir: str, r: RunResult):
        limits = self.limits
        deadline = timeout + limits.startup_grace
        ctrl = {"uid": r.uid, "workdir": workdir, "rlimits": self._rlimits(), "deadline": deadline}
        state: dict[str, Any] = {}
        healthy = False
        ours: list[int] = []
        z = self._zygote()  # first: it may raise _ForkServerError, before any fd exists
        try:
            nonce = secrets.token_hex(16)
            data = self._payload(job, timeout, 3, nonce, with_code=False)
            pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, results
            child_ends = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
            ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
            # Most jobs fit the pipe buffer: the child finds its job waiting at start.
            os.set_blocking(ours[0], False)
            try:
                sent = os.write(ours[0], data[: 1 << 16])
            except BlockingIOError:
                sent = 0
            try:
                socket.send_fds(z.sock, [marshal.dumps(ctrl)], child_ends)
            except OSError as exc:
                raise _ForkServerError(str(exc)) from exc
            finally:
                for fd in child_ends:
                    os.close(fd)

            def on_control() -> None:
                try:
                    kind, *rest = marshal.loads(z.sock.recv(1 << 16))
                except (OSError, ValueError, EOFError, TypeError):  # server lost
                    state["exit"] = ("lost", None, False)
                    return
                if kind == "pid":
                    state["pid"] = rest[0]
                else:
                    state["exit"] = (kind, *rest)

            owned, ours = ours, []  # _pump owns and closes them from here on
            channel = self._pump(
                *owned, data[sent:], time.monotonic() + deadline, r,
                lambda: "exit" in state, control=(z.sock.fileno(), on_control),
            )  # fmt: skip
            r.records = _parse_records(channel, nonce)
            r.done = any(rec.get("t") == "done" for rec in r.records)
            try:
                z.sock.settimeout(deadline + 10)
                if (r.timed_out or r.output_exceeded) and "exit" not in state:
                    while "pid" not in state and "exit" not in state:
                        on_control()
                    _kill_pid(state.get("pid"))
                while "exit" not in state:
                    on_control()
            except (OSError, ValueError, EOFError):
                _kill_pid(state.get("pid"))  # the server is dropped below; so is its child
                state["exit"] = ("lost", None, False)
            kind, code, killed = state["exit"]
            if kind != "exit":
                _kill_pid(state.get("pid"))  # nobody else will stop it now
            r.returncode = code
            r.timed_out = r.timed_out or bool(killed)
            healthy = kind == "exit" and code is not None
        finally:
            for fd in ours:
                os.close(fd)
            if healthy:
                self._zygotes.put(z)
            else:
                self._drop_zygote(z)

    # -- fresh-interpreter path ----------------------------------------------------------
    def _run_exec(self, job: dict[str, Any], timeout: float, workdir: str, r: RunResult):
        limits = self.limits
        # Plain pipes (no file objects): _pump owns and closes our ends, nothing else
        # does, so no fd is ever closed twice (another thread may have reused it).
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, results
        child_ends = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        proc = None
        try:
            nonce = secrets.token_hex(16)
            data = self._payload(job, timeout, child_ends[3], nonce)
            cmd = _base_cmd(self.mode, r.uid) + [self.python, "-I", "-S", "-c", _BOOT]
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=child_ends[0],
                    stdout=child_ends[1],
                    stderr=child_ends[2],
                    cwd=workdir,
                    env=self._child_env(workdir),
                    start_new_session=True,
                    preexec_fn=_preexec(limits, enforce_nproc=self.mode != "userns"),
                    pass_fds=(child_ends[3],),
                    close_fds=True,
                )
            finally:
                for fd in child_ends:
                    os.close(fd)
            owned, ours = ours, []
            channel = self._pump(
                *owned, data, time.monotonic() + timeout + limits.startup_grace, r,
                lambda: proc.poll() is not None,
            )  # fmt: skip
            r.records = _parse_records(channel, nonce)
            r.done = any(rec.get("t") == "done" for rec in r.records)
        finally:
            for fd in ours:
                os.close(fd)
            if proc is not None:
                _kill_group(proc)
                try:
                    r.returncode = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    r.returncode = None

    def _pump(
        self,
        stdin_fd: int,
        stdout_fd: int,
        stderr_fd: int,
        result_fd: int,
        data: bytes,
        deadline: float,
        result: RunResult,
        exited: Any,
        control: tuple[int, Any] | None = None,
    ) -> bytes:
        """Feed stdin; drain stdout/stderr/results until EOF, the deadline or the output
        cap. Closes all four fds. `control` = (fd, callback) is serviced while waiting."""
        cap = self.limits.output_bytes
        keep = 4096
        out_len = 0
        outs: dict[int, bytearray] = {stdout_fd: bytearray(), stderr_fd: bytearray()}
        channel = bytearray()
        channel_cap = 64 << 20
        sel = selectors.DefaultSelector()
        os.set_blocking(stdin_fd, False)
        view = memoryview(data)
        sel.register(stdin_fd, selectors.EVENT_WRITE)
        for fd in (stdout_fd, stderr_fd, result_fd):
            sel.register(fd, selectors.EVENT_READ)
        open_fds = {stdin_fd, stdout_fd, stderr_fd, result_fd}
        if not data:
            drop_stdin = True
        else:
            drop_stdin = False
        control_fd = -1
        if control is not None:
            control_fd = control[0]
            sel.register(control_fd, selectors.EVENT_READ)

        def drop(fd: int) -> None:
            sel.unregister(fd)
            os.close(fd)
            open_fds.discard(fd)

        gone = False
        if drop_stdin:
            drop(stdin_fd)
        try:
            while len(sel.get_map()) > (control_fd >= 0):
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    result.timed_out = not gone
                    break
                if not gone and exited():
                    # The candidate is gone; whatever still holds a pipe gets a moment.
                    gone = True
                    deadline = min(deadline, now + 0.25)
                for key, _ in sel.select(min(left, 0.25)):
                    fd = key.fd
                    if fd == control_fd:
                        control[1]()  # type: ignore[index]
                        if exited():
                            sel.unregister(control_fd)
                            control_fd = -1
                        continue
                    if fd == stdin_fd:
                        try:
                            n = os.write(fd, view[:65536])
                            view = view[n:]
                        except BlockingIOError:
                            continue
                        except OSError:  # child gone before reading its job
                            view = view[:0]
                        if not view:
                            drop(fd)
                        continue
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        drop(fd)
                        continue
                    if fd == result_fd:
                        channel += chunk
                        if len(channel) > channel_cap:
                            result.output_exceeded = True
                            return bytes(channel)
                        continue
                    out_len += len(chunk)
                    buf = outs[fd]
                    if len(buf) < keep:
                        buf += chunk[: keep - len(buf)]
                    if out_len > cap:
                        result.output_exceeded = True
                        return bytes(channel)
        finally:
            sel.close()
            for fd in open_fds:
                os.close(fd)
            result.stdout = outs[stdout_fd].decode("utf-8", "replace")
            result.stderr = outs[stderr_fd].decode("utf-8", "replace")
        return bytes(channel)


class _ForkServerError(RuntimeError):
    pass


def _kill_pid(pid: Any) -> None:
    """SIGKILL one process -- only a real pid: kill(-1) or kill(0) would hit far more."""
    if isinstance(pid, int) and pid > 1:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _parse_records(channel: bytes, nonce: str) -> list[dict[str, Any]]:
    records = []
    for line in channel.split(b"\n"):
        if not line.strip() or len(line) > 1 << 20:
            continue
        try:
            rec = ast.literal_eval(line.decode("utf-8", "replace"))
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
        if isinstance(rec, dict) and rec.get("n") == nonce:
            rec.pop("n")
            records.append(rec)
            if rec.get("t") == "done":
                break  # nothing after the sentinel counts
    return records


_default: dict[tuple, Sandbox] = {}
_default_lock = threading.Lock()


def get_sandbox(
    limits: Limits | None = None, workers: int = 2, isolation: str | None = None
) -> Sandbox:
    """A shared `Sandbox` for these settings (its fork servers are reused)."""
    key = (limits or Limits(), workers, isolation)
    with _default_lock:
        if key not in _default:
            _default[key] = Sandbox(limits=limits, workers=workers, isolation=isolation)
        return _default[key]
