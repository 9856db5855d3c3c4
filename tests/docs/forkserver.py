"""A fork server for the documentation examples: ``mmlatch`` without paying its imports each time.

Each ``mmlatch ...`` line of an example costs 5-10 s of imports (torch, Lightning, matplotlib)
before it does anything; the docs hold dozens of them. This process imports once, then for
every request forks a child that runs the real command line (``mmlatch.cli.main.app``, the
console script's entry point) or a Python file, with the client's argv, working directory,
environment and its stdin/stdout/stderr (passed over a Unix socket). The child's exit code
goes back to the client, which exits with it: to the shell an example runs in, the client is
the ``mmlatch`` command. ``MMLATCH_DOCS_DIRECT=1`` skips the server and runs the installed
console script and interpreter instead (same results, slower). ``python`` lines of the
examples go through the server as well (a file, ``-c``, ``-`` or ``-m``).

Requests are served one at a time (one server per test worker; a page's commands run in order).

    python forkserver.py SOCKET        # serve; prints "ready" once the imports are done
    client: see CLIENT below (installed as ``mmlatch`` and ``python`` on the PATH)
"""

from __future__ import annotations

import json
import os
import socket
import sys

CLIENT = '''\
import json, os, socket, sys
mode = "mmlatch" if os.path.basename(sys.argv[0]) == "mmlatch" else "python"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["MMLATCH_DOCS_SERVER"])
body = json.dumps({"mode": mode, "argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
socket.send_fds(s, [b"%012d" % len(body)], [0, 1, 2])
s.sendall(body)
reply = b""
while True:
    chunk = s.recv(64)
    if not chunk:
        break
    reply += chunk
sys.exit(int(reply or b"1"))
'''


def _preimport() -> None:
    """What the commands load: done once here instead of once per command."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import lightning.pytorch  # noqa: F401
    import torch  # noqa: F401

    import mmlatch.analysis.collect  # noqa: F401
    import mmlatch.cli.main  # noqa: F401
    import mmlatch.data.readers  # noqa: F401
    import mmlatch.models

    mmlatch.models.list_models()  # registers every model
    import mmlatch.training.experiment  # noqa: F401
    import mmlatch.training.run  # noqa: F401


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _child(request: dict, fds: list[int]) -> None:
    """Become the command: its fds, directory and environment; never returns."""
    code = 1
    try:
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)
        if request["mode"] == "python":
            _python(list(request["argv"]))
            code = 0
        else:
            from mmlatch.cli.main import app

            sys.argv = ["mmlatch", *request["argv"]]
            app(args=list(request["argv"]), prog_name="mmlatch")
            code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - report like the interpreter would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _python(argv: list[str]) -> None:
    """``python FILE ...``, ``python -c CODE ...``, ``python - ...`` (code on stdin) and
    ``python -m MODULE ...`` in this process; any other interpreter flag: the interpreter."""
    import runpy

    if argv and argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        sys.path.insert(0, "")
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    elif not argv or argv[0] == "-":
        sys.argv = ["-", *argv[1:]]
        sys.path.insert(0, "")
        exec(compile(sys.stdin.read(), "<stdin>", "exec"), {"__name__": "__main__"})
    elif argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0].startswith("-"):
        os.execv(sys.executable, [sys.executable, *argv])
    else:
        sys.argv = list(argv)
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")


def serve(path: str) -> None:
    _preimport()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                head, fds, _, _ = socket.recv_fds(conn, 12, 3)
                request = json.loads(_recv_exact(conn, int(head)))
            except (ConnectionError, ValueError):
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                _child(request, fds)
            for fd in fds:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(str(code if code >= 0 else 128 - code).encode())
            except OSError:
                pass


if __name__ == "__main__":
    serve(sys.argv[1])
