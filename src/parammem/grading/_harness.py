"""In-sandbox test runner. Never imported by the grader: `sandbox.py` compiles this file
once, and each sandboxed ``python -I -S`` receives the code object and its job through
stdin (marshal) and calls ``main(job)``. It therefore imports only built-in or frozen
modules up front (no site, json, re, enum, ast or traceback): interpreter start-up is
most of the per-candidate cost.

The job carries the candidate program, the tests, a time budget, the number of a private
result pipe and a random nonce. Every record written to that pipe carries the nonce; the
last one, ``{"t": "done"}``, is written only after the last test ran. The grader decides
"passed" from these records alone, never from the exit code, so a candidate that exits
early (``os._exit(0)``, ``sys.exit``) or prints look-alike output cannot pass.

Modes:
- ``asserts``: run the program, then every test string separately (one record each,
  with the actual value of the call under test);
- ``script``: run the program, then a test script (a hidden ``check()`` suite);
- ``stdio``: run the program once per case with the case's stdin, compare stdout;
- ``functional``: call ``Solution().<func>(*args)`` (or a plain function) per case.
"""

import _signal
import builtins
import os
import sys
import time


class _Timeout(BaseException):
    """Raised by SIGALRM when the time budget is spent (not catchable as Exception)."""


def _alarm(signum, frame):
    raise _Timeout()


def _short(text, limit=300):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc):
    if isinstance(exc, _Timeout):
        return "timed out"
    try:
        name = type(exc).__name__
        msg = str(exc)
    except BaseException:
        return "exception"
    return _short(f"{name}: {msg}" if msg else name)


def _safe_repr(value):
    try:
        return _short(repr(value))
    except BaseException as exc:  # a hostile __repr__
        return f"<unrepresentable: {type(exc).__name__}>"


def _block_network():
    import _socket
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("network access is disabled in the sandbox")

    for mod in (socket, _socket):
        for attr in ("socket", "create_connection", "create_server", "socketpair", "fromfd"):
            if hasattr(mod, attr):
                setattr(mod, attr, _refuse)


def _site_builtins():
    """What `site` would have added and programs use: exit() / quit()."""

    def _quit(code=None):
        raise SystemExit(code)

    builtins.exit = builtins.quit = _quit


def main(job):
    if job.get("mode") == "serve":
        serve(job)
        return
    nonce = job.pop("nonce")
    out_fd = job.pop("fd")
    # The candidate gets an empty stdin; its children never inherit the result pipe.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.set_inheritable(out_fd, False)
    for path in job.pop("sys_path", ()):
        if path not in sys.path:
            sys.path.append(path)
    _site_builtins()

    write = os.write

    def emit(record):
        record["n"] = nonce
        data = ("\n" + repr(record) + "\n").encode("utf-8", "backslashreplace")
        while data:
            data = data[write(out_fd, data) :]

    if job.get("block_network"):
        _block_network()
    if job.get("nproc") is not None:
        import resource

        n = int(job["nproc"])
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))

    _signal.signal(_signal.SIGALRM, _alarm)
    monotonic = time.monotonic
    setitimer = _signal.setitimer
    real = _signal.ITIMER_REAL
    deadline = monotonic() + float(job.get("timeout", 5.0))

    def arm():
        left = deadline - monotonic()
        if left <= 0:
            raise _Timeout()
        setitimer(real, left)

    def disarm():
        setitimer(real, 0)

    mode = job["mode"]
    try:
        code = compile(job["program"], "solution.py", "exec")
    except BaseException as exc:  # SyntaxError, ValueError (null bytes), RecursionError
        emit({"t": "load", "ok": False, "error": _describe(exc)})
        emit({"t": "done"})
        _finish()

    if mode == "stdio":
        _run_stdio(job, code, emit, arm, disarm)
    else:
        g = {"__name__": job.get("module_name") or "__solution__", "__builtins__": builtins}
        try:
            arm()
            exec(code, g)
            disarm()
        except BaseException as exc:
            disarm()
            emit(
                {
                    "t": "load",
                    "ok": False,
                    "error": _describe(exc),
                    "timeout": isinstance(exc, _Timeout),
                }
            )
            emit({"t": "done"})
            _finish()
        setup = job.get("setup")
        if setup:
            try:
                arm()
                exec(compile(setup, "<setup>", "exec"), g)
                disarm()
            except BaseException as exc:
                disarm()
                emit({"t": "load", "ok": False, "error": "test setup failed: " + _describe(exc)})
                emit({"t": "done"})
                _finish()
        emit({"t": "load", "ok": True})
        if mode == "asserts":
            _run_asserts(job, g, emit, arm, disarm)
        elif mode == "script":
            _run_script(job, g, emit, arm, disarm)
        elif mode == "functional":
            _run_functional(job, g, emit, arm, disarm)
        else:
            emit({"t": "load", "ok": False, "error": f"unknown mode {mode!r}"})
    emit({"t": "done"})
    _finish()


def _finish():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(0)


def _children(node):
    import _ast

    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, _ast.AST):
            yield node, name, None, value
        elif isinstance(value, list):
            for k, item in enumerate(value):
                if isinstance(item, _ast.AST):
                    yield node, name, k, item


def _prepare_assert(test, entry_point):
    """Compile `test`; for an `assert`, split off the expression whose value is shown
    as the actual output: the first call of the entry point (breadth first), else the
    left side of a comparison. Returns (probe_code or None, check_code)."""
    import _ast

    tree = compile(test, "<test>", "exec", _ast.PyCF_ONLY_AST)
    if len(tree.body) != 1 or not isinstance(tree.body[0], _ast.Assert):
        return None, compile(tree, "<test>", "exec")
    node = tree.body[0]
    found = None  # (parent, field, index, target)
    queue = [(node, "test", None, node.test)] if entry_point else []
    while queue:
        parent, fname, idx, sub = queue.pop(0)
        if isinstance(sub, _ast.Call):
            func = sub.func
            name = func.id if isinstance(func, _ast.Name) else getattr(func, "attr", None)
            if name == entry_point:
                found = (parent, fname, idx, sub)
                break
        queue.extend(_children(sub))
    if found is None and isinstance(node.test, _ast.Compare):
        found = (node.test, "left", None, node.test.left)
    if found is None:
        return None, compile(tree, "<test>", "exec")
    parent, fname, idx, target = found
    probe = compile(_ast.Expression(body=target), "<test>", "eval")
    name = _ast.Name(id="__pm_actual__", ctx=_ast.Load())
    for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
        setattr(name, attr, getattr(target, attr))
    if idx is None:
        setattr(parent, fname, name)
    else:
        getattr(parent, fname)[idx] = name
    return probe, compile(tree, "<test>", "exec")


def _run_asserts(job, g, emit, arm, disarm):
    entry_point = job.get("entry_point")
    tests = job.get("tests") or []
    for i, test in enumerate(tests):
        try:
            probe, check = _prepare_assert(test, entry_point)
        except BaseException as exc:
            emit({"t": "test", "i": i, "ok": False, "out": "invalid test: " + _describe(exc)})
            continue
        out = None
        try:
            arm()
            if probe is not None:
                actual = eval(probe, g)
                out = _safe_repr(actual)
                g["__pm_actual__"] = actual
            exec(check, g)
            disarm()
            emit({"t": "test", "i": i, "ok": True, "out": out})
        except _Timeout:
            disarm()
            emit({"t": "test", "i": i, "ok": False, "out": "timed out", "timeout": True})
            for j in range(i + 1, len(tests)):
                emit({"t": "test", "i": j, "ok": False, "out": "not run (time limit reached)"})
            return
        except BaseException as exc:
            disarm()
            if out is None or not isinstance(exc, AssertionError):
                out = _describe(exc)
            emit({"t": "test", "i": i, "ok": False, "out": out})
        finally:
            g.pop("__pm_actual__", None)


def _run_script(job, g, emit, arm, disarm):
    source = job.get("test_code") or ""
    try:
        arm()
        exec(compile(source, "<test>", "exec"), g)
        disarm()
        emit({"t": "check", "ok": True})
    except BaseException as exc:
        disarm()
        line = ""
        lines = source.splitlines()
        tb = exc.__traceback__
        while tb is not None:
            lineno = tb.tb_lineno
            if tb.tb_frame.f_code.co_filename == "<test>" and 0 < lineno <= len(lines):
                line = lines[lineno - 1].strip()
            tb = tb.tb_next
        emit(
            {
                "t": "check",
                "ok": False,
                "error": _describe(exc),
                "line": _short(line),
                "timeout": isinstance(exc, _Timeout),
            }
        )


def _outputs_match(actual, expected):
    """LiveCodeBench-style comparison: line by line after stripping; numbers compared
    as floats when the text differs."""
    a_lines = [ln.strip() for ln in actual.strip().split("\n")]
    e_lines = [ln.strip() for ln in expected.strip().split("\n")]
    if a_lines == e_lines:
        return True
    if len(a_lines) != len(e_lines):
        return False
    for a, e in zip(a_lines, e_lines, strict=True):
        if a == e:
            continue
        a_tok, e_tok = a.split(), e.split()
        if len(a_tok) != len(e_tok):
            return False
        for x, y in zip(a_tok, e_tok, strict=True):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                return False
            if abs(fx - fy) > 1e-6 * max(1.0, abs(fy)):
                return False
    return True


def _run_stdio(job, code, emit, arm, disarm):
    import io

    cases = job.get("cases") or []
    stop = job.get("stop_on_fail", False)
    real_stdout, real_open = sys.stdout, builtins.open
    for i, case in enumerate(cases):
        data = case["input"].encode()
        sink = io.BytesIO()
        out = io.TextIOWrapper(sink, encoding="utf-8", write_through=True)
        sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        sys.stdout = out

        def _open(file, mode="r", *args, _data=data, **kwargs):
            # `open(0).read()` is a common way to read all of stdin.
            if file == 0 or file == "/dev/stdin":
                raw = io.BytesIO(_data)
                return raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8")
            return real_open(file, mode, *args, **kwargs)

        builtins.open = _open
        g = {"__name__": "__main__", "__builtins__": builtins}
        err = None
        timed_out = False
        try:
            arm()
            exec(code, g)
            disarm()
        except SystemExit:
            disarm()
        except _Timeout:
            disarm()
            err, timed_out = "timed out", True
        except BaseException as exc:
            disarm()
            err = _describe(exc)
        finally:
            sys.stdout = real_stdout
            builtins.open = real_open
        try:
            out.flush()
        except BaseException:
            pass
        actual = sink.getvalue().decode("utf-8", "replace")
        ok = err is None and _outputs_match(actual, case["output"])
        shown = err if err is not None else _short(actual, 500)
        emit({"t": "test", "i": i, "ok": ok, "out": shown, "timeout": timed_out})
        if timed_out or (stop and not ok):
            for j in range(i + 1, len(cases)):
                emit({"t": "test", "i": j, "ok": False, "out": "not run", "skipped": True})
            return


def _normalise(value):
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _run_functional(job, g, emit, arm, disarm):
    import json

    func_name = job["func_name"]
    cases = job.get("cases") or []
    stop = job.get("stop_on_fail", False)
    for i, case in enumerate(cases):
        err, out, ok, timed_out = None, None, False, False
        try:
            args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
            expected = json.loads(case["output"])
            arm()
            if "Solution" in g:
                fn = getattr(g["Solution"](), func_name)
            else:
                fn = g[func_name]
            actual = fn(*args)
            disarm()
            out = _safe_repr(actual)
            ok = _normalise(actual) == _normalise(expected)
        except _Timeout:
            disarm()
            err, timed_out = "timed out", True
        except BaseException as exc:
            disarm()
            err = _describe(exc)
        emit({"t": "test", "i": i, "ok": ok, "out": err or out, "timeout": timed_out})
        if timed_out or (stop and not ok):
            for j in range(i + 1, len(cases)):
                emit({"t": "test", "i": j, "ok": False, "out": "not run", "skipped": True})
            return


# ---------------------------------------------------------------------------------------
# Fork server ("zygote"): one pre-started interpreter per grader worker, running as root
# inside the sandbox's network namespace. For each candidate it receives the candidate's
# pipes over a unix socket and forks a child that becomes a new session, takes the pipes
# as fds 0-3, applies the rlimits, moves to a fresh uid (keeping only
# CAP_DAC_READ_SEARCH so the interpreter's modules stay readable) and runs `main` on the
# job read from stdin. Forking a small warm process instead of exec'ing an interpreter
# is what keeps the per-candidate cost at a few milliseconds.

_PRELOAD = (
    "_ast",
    "io",
    "json",
    "re",
    "typing",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "math",
    "string",
    "random",
    "copy",
    "operator",
)


def serve(config):
    import ctypes
    import marshal
    import resource
    import select
    import socket

    for name in config.get("preload", _PRELOAD):
        try:
            __import__(name)
        except BaseException:
            pass
    for path in config.get("sys_path", ()):
        if path not in sys.path:
            sys.path.append(path)
    _site_builtins()
    libc = ctypes.CDLL(None, use_errno=True)
    # Orphaned descendants of a candidate (forks, setsid/double-fork escapees) are
    # re-parented to us, so "no children left" proves the candidate left nothing behind.
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    sock = socket.socket(fileno=config["sock"])
    base_env = dict(os.environ)
    sock.sendall(marshal.dumps(("ready", os.getpid())))
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
        except OSError:
            break
        if not msg:
            break
        req = marshal.loads(msg)
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                _child(req, fds, libc, resource, marshal, base_env)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        try:
            sock.sendall(marshal.dumps(("pid", pid)))
        except OSError:
            os.kill(pid, 9)
        timed_out = False
        try:
            pidfd = os.pidfd_open(pid)
            ready, _, _ = select.select([pidfd], [], [], req["deadline"])
            os.close(pidfd)
            if not ready:
                timed_out = True
                os.kill(pid, 9)
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
        _reap_leftovers(req["uid"])
        try:
            sock.sendall(marshal.dumps(("exit", os.waitstatus_to_exitcode(status), timed_out)))
        except OSError:
            break
    os._exit(0)


def _reap_leftovers(uid):
    """Kill and reap every process the candidate left (forks, setsid escapees): as the
    candidate's uid, kill(-1) reaches exactly its processes."""
    try:
        if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            pass  # children exist (still running): fall through to the kill
    except ChildProcessError:
        return  # the usual case: nothing left behind
    if not isinstance(uid, int) or uid < 65536:
        return  # never kill(-1) as anyone but a fresh sandbox uid
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.getuid() == uid and os.geteuid() == uid:
                os.kill(-1, 9)
        finally:
            os._exit(0)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _child(req, fds, libc, resource, marshal, base_env):
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(len(fds), 1 << 16)
    os.chdir(req["workdir"])
    for name, value in req["rlimits"]:
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):
            pass
    uid = req["uid"]
    if not isinstance(uid, int) or uid < 65536:
        os._exit(75)  # candidates never run as root or as an existing account
    if libc.prctl(8, 1, 0, 0, 0) != 0:  # PR_SET_KEEPCAPS
        os._exit(71)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    import ctypes

    dac_read_search = 1 << 2
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (ctypes.c_uint32 * 6)(dac_read_search, dac_read_search, 0, 0, 0, 0)
    if libc.capset(header, data) != 0:
        os._exit(72)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        os._exit(73)
    if os.getuid() != uid or os.geteuid() != uid:
        os._exit(74)
    os.environ.clear()
    os.environ.update(base_env)
    os.environ.update(HOME=req["workdir"], TMPDIR=req["workdir"])
    if "random" in sys.modules:
        sys.modules["random"].seed()
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    _, job = marshal.loads(b"".join(chunks))
    main(job)
