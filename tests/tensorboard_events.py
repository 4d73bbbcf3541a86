"""What TensorBoard shows of a run's tb/ folder, for tests of what the runs log."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def tb_scalars(run) -> dict:
    """Tag -> [(x, value)] as TensorBoard shows `run/tb` (purged events dropped), wall times left out."""
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return {tag: [(e.step, round(e.value, 5)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
            if tag != "epoch/time"}
