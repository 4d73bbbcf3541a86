"""What TensorBoard shows of a run's tb/ folder, for tests of what the runs log."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def tb_scalars(run) -> dict:
    """Tag -> [(x, value)] as TensorBoard shows `run/tb` (purged events dropped), wall times left out."""
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return {tag: [(e.step, round(e.value, 5)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
            if tag != "epoch/time"}


class Killed(Exception):
    """Raised where a test kills a run."""


def killed_after_epoch_log(real, epoch: int):
    """A log_epoch that logs as `real` does, then raises Killed after epoch `epoch`'s record: a kill between
    an epoch's log and its checkpoint."""

    def log(path, record, writer):
        real(path, record, writer)
        if record["epoch"] == epoch:
            raise Killed

    return log
