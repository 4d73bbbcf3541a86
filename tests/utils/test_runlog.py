import json
import warnings
from pathlib import Path

import pytest

from audionas.errors import UserError
from audionas.utils.runlog import append_line, check_diverged, format_record, log_epoch, trim_epoch_lines


class _Writer:
    def __init__(self):
        self.scalars, self.flushed = [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        self.flushed = True


def test_trim_keeps_finished_epochs_only(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for e in (1, 2, 3):
        append_line(path, {"epoch": e, "loss": 1.0 / e})
    # QA (torchrun): a stop right after epoch 1's line, before its checkpoint, restarted the run unsaid
    said = r"metrics.jsonl: {} logged, then the run stopped before saving its checkpoint: {} again$"
    with pytest.warns(UserWarning, match=said.format("epoch 3 was", "it runs")):
        trim_epoch_lines(path, 2)
    append_line(path, {"epoch": 3})
    append_line(path, {"epoch": 4})
    with pytest.warns(UserWarning, match=said.format("epochs 3, 4 were", "they run")):
        trim_epoch_lines(path, 2)
    assert [json.loads(ln)["epoch"] for ln in path.read_text().splitlines()] == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trim_epoch_lines(path, 2)  # nothing dropped: nothing said
    trim_epoch_lines(tmp_path / "missing.jsonl", 1)  # no file: nothing to do
    assert not (tmp_path / "missing.jsonl").exists()


def test_format_record_rounds_floats_and_skips():
    line = format_record({"epoch": 3, "acc": 0.123456, "genotype": {"a": 1}}, skip=("genotype",))
    assert line == "epoch=3 acc=0.1235"


def test_log_epoch_writes_all_three(tmp_path, capsys):
    writer = _Writer()
    log_epoch(tmp_path / "m.jsonl", {"epoch": 2, "step": 10, "acc": 0.5}, writer)
    assert writer.scalars == [("epoch/acc", 0.5, 10)] and writer.flushed  # x = the step when it has one
    assert json.loads((tmp_path / "m.jsonl").read_text()) == {"epoch": 2, "step": 10, "acc": 0.5}
    assert "epoch=2 step=10 acc=0.5" in capsys.readouterr().err


def test_log_epoch_keeps_values_that_are_not_numbers_out_of_tensorboard_and_the_console(tmp_path, capsys):
    writer = _Writer()
    rec = {"epoch": 1, "acc": 0.5, "genotype": {"normal": []}, "ok": True}
    log_epoch(tmp_path / "e.jsonl", rec, writer)
    assert writer.scalars == [("epoch/acc", 0.5, 1)]
    assert json.loads((tmp_path / "e.jsonl").read_text()) == rec
    assert capsys.readouterr().err == "epoch=1 acc=0.5\n"


def test_append_line_is_all_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    append_line(path, {"epoch": 1})

    def die(*a, **k):
        raise KeyboardInterrupt  # a kill between writing the new file and renaming it

    monkeypatch.setattr("os.replace", die)
    with pytest.raises(KeyboardInterrupt):
        append_line(path, {"epoch": 2, "note": "x" * 10_000})
    assert path.read_text() == '{"epoch": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_trim_drops_a_cut_last_line_and_refuses_earlier_garbage(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "lo')  # a crash mid-write (or a truncated copy)
    trim_epoch_lines(path, 2)
    assert [json.loads(ln)["epoch"] for ln in path.read_text().splitlines()] == [1]
    path.write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(UserError, match="metrics.jsonl line 2: not a JSON line"):
        trim_epoch_lines(path, 2)
    path.write_text('{"epoch": 1}\n{"loss": 2}\n')
    with pytest.raises(UserError, match="metrics.jsonl: record 2 has no integer 'epoch'"):
        trim_epoch_lines(path, 2)


def test_resume_line_counts_epochs_and_steps_from_one_and_zero():
    from audionas.utils.runlog import resume_line

    # 5 steps per epoch, 3 epochs: step 7 is the 3rd step (index 2) of the 2nd epoch
    assert resume_line("r", 7, 5, 3, "done") == "resuming r at epoch 2/3, step 2/5"
    assert resume_line("r", 10, 5, 3, "done") == "resuming r at epoch 3/3, step 0/5"
    assert resume_line("r", 15, 5, 3, "done") == "r: already complete (3 epochs); done"
    assert resume_line("r", 5, 5, 1, "done") == "r: already complete (1 epoch); done"


def test_a_new_start_s_event_file_sorts_after_the_earlier_ones(tmp_path):
    # Before: a resume within the second of an earlier start in one process could get a file named
    # '...<same seconds>...100', which TensorBoard reads before '...99': the earlier start's events then hid
    # this one's (a CI run: epoch/train_loss showed [5] instead of [5, 10]).
    import socket
    import time

    from torch.utils.tensorboard import SummaryWriter  # noqa: F401 (imported now: its import takes a second)

    from audionas.utils.runlog import tensorboard_writer

    tb = tmp_path / "tb"
    tb.mkdir()
    now = int(time.time()) + 1  # an earlier start's file of the second to come: this start falls in it
    earlier = tb / f"events.out.tfevents.{now:010d}.{socket.gethostname()}.1.99"
    earlier.write_bytes(b"")
    with tensorboard_writer(tmp_path, True, 1):
        pass
    names = sorted(p.name for p in tb.iterdir())
    assert len(names) == 2 and names[0] == earlier.name
    assert int(names[1].split(".")[3]) > now


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the writer thread's
def test_a_full_disk_under_tensorboard_is_a_user_error_naming_its_folder(small_disk):
    # Before (QA): "audionas: error: No space left on device" (no file named), then the writer thread's
    # traceback.
    from audionas.utils.runlog import tensorboard_writer

    run = small_disk(8)
    (run / "fill").write_bytes(b"\0" * 8192)
    with pytest.raises(UserError, match=rf"^{run / 'tb'}: cannot write TensorBoard events \(No space left on "
                                        r"device\)$"):
        with tensorboard_writer(run, True, 1) as writer:
            writer.add_scalar("train/loss", 1.0, 1)
            writer.flush()


def test_an_error_of_tensorboards_writer_that_is_no_write_failure_is_raised_as_it_is(tmp_path):
    # Before (the review): any OSError became "cannot write TensorBoard events (None)".
    import errno

    from audionas.utils.runlog import NamedWriter

    class Limited:
        def add_scalar(self, *args, **kwargs):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    with pytest.raises(OSError, match="Resource temporarily unavailable"):
        NamedWriter(Limited(), tmp_path / "tb").add_scalar("x", 1.0, 1)


def test_a_block_that_raises_closes_its_tensorboard_writer(tmp_path):
    # Before (resource QA): an error in an in-process train or search left its writer open, its thread
    # running and the scalars since the last flush (TensorBoard flushes every 120 s) unwritten.
    import threading

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from audionas.utils.runlog import tensorboard_writer

    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="the block's own"):
        with tensorboard_writer(tmp_path, True, 1) as writer:
            writer.add_scalar("train/loss", 0.5, 1)
            assert threading.active_count() > threads
            raise RuntimeError("the block's own")
    assert threading.active_count() == threads
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.value for e in events.Scalars("train/loss")] == [0.5]


def test_a_failing_close_does_not_hide_the_blocks_error(tmp_path, monkeypatch):
    from audionas.utils import runlog

    writers = []

    def failing_close(self):
        writers.append(self._writer)
        raise UserError("cannot write TensorBoard events")

    monkeypatch.setattr(runlog.NamedWriter, "close", failing_close)
    with pytest.raises(RuntimeError, match="the block's own"):
        with runlog.tensorboard_writer(tmp_path, True, 1):
            raise RuntimeError("the block's own")
    with pytest.raises(UserError, match="cannot write"):  # with no error of the block's, close's is raised
        with runlog.tensorboard_writer(tmp_path, True, 1):
            pass
    for writer in writers:  # their threads end with the test
        writer.close()


def test_a_file_where_the_tensorboard_folder_goes_is_named_as_such(tmp_path):
    # Before (QA): "RUN/tb: cannot write TensorBoard events (File exists)".
    from audionas.utils.runlog import tensorboard_writer

    (tmp_path / "tb").write_text("notes")
    with pytest.raises(UserError, match=r"tb: is a file, expected the run's TensorBoard folder; move"):
        with tensorboard_writer(tmp_path, True, 1):
            pass
    assert (tmp_path / "tb").read_text() == "notes"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_an_infinite_or_nan_loss_is_divergence(value):
    with pytest.raises(UserError, match=rf"^run: training diverged in epoch 2 \(val_loss {value}\); lower "
                                        r"optim\.lr \(with another --out\)"):
        check_diverged(Path("run"), 2, {"epoch": 2, "val_loss": value, "acc": 0.5}, "lower optim.lr")
    check_diverged(Path("run"), 2, {"epoch": 2, "val_loss": 1e30, "acc": float("nan")}, "x")  # finite loss
