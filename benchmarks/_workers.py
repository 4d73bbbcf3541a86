"""Time the step functions of several variants, each in a worker process of its own, alternating steps.

Why processes: audionas's commands tune the process's memory allocator (audionas.utils.allocator); a plain
PyTorch reference must run without that, so every variant gets a fresh process and says whether it is tuned.
Steps alternate between the workers (one computes at a time) so load from other processes hits all alike.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time


def _serve(conn, build, args, tune: bool) -> None:
    # Ctrl-C reaches the whole process group: the parent reports it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if tune:
        from audionas.utils.allocator import tune_allocator

        tune_allocator()
    try:
        step = build(*args)
        step()  # warm-up: oneDNN primitive creation, heap growth
        conn.send("ready")
        while conn.recv() == "step":
            t0 = time.perf_counter()
            step()
            conn.send(time.perf_counter() - t0)
    except (EOFError, BrokenPipeError):  # the parent is gone (stopped or killed): nothing to report to
        return


def _recv(conn, name: str):
    from audionas.errors import UserError

    try:
        return conn.recv()
    except EOFError:
        raise UserError(f"benchmark worker '{name}' died (out of memory? try a smaller configuration: see "
                        f"--help)") from None


def time_in_workers(variants: dict, steps: int) -> dict[str, list[float]]:
    """variants: name -> (build, args, tune_allocator). `build(*args)` (a module-level function, so that the
    spawned worker can import it) returns a zero-argument step function. Returns name -> step times in s."""
    ctx = mp.get_context("spawn")
    conns, procs = {}, []
    try:
        for name, (build, args, tune) in variants.items():
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, build, args, tune), daemon=True)
            proc.start()
            child.close()  # so that a worker that dies gives EOFError here instead of a hang
            procs.append(proc)
            conns[name] = parent
            _recv(parent, name)  # warm-ups one after the other, not competing for the cores
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(steps):
            for name, conn in conns.items():
                try:
                    conn.send("step")
                except (BrokenPipeError, OSError):
                    _recv(conn, name)  # raises the clear error
                times[name].append(_recv(conn, name))
        return times
    except BaseException:  # a stop or an error: the workers' current steps are not waited for
        for proc in procs:
            proc.terminate()
        raise
    finally:
        for conn in conns.values():
            try:
                conn.send("stop")
            except (BrokenPipeError, OSError):
                pass
        for proc in procs:
            proc.join(timeout=30)
