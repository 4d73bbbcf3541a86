import torch

from audionas.data import DataConfig, build_data
from audionas.data.fixtures import make_folder_fixture as make_folder


def test_the_augmented_val_view_draws_from_another_stream_than_training(tmp_path):
    # same [seed, epoch, i] would give val item i the shift and noise of training item i in every epoch
    root = make_folder(tmp_path, noise=True)
    b = build_data(DataConfig(kind="folder", root=str(root), split="ratio"), seed=3)
    assert b.val_augmented.train and b.val_augmented.items == b.val.items
    assert b.val_augmented.seed != b.train.seed


def test_val_silence_crops_follow_split_seed_not_the_run_seed(speech_commands_root):
    # runs with other seeds must score the same validation clips (their _silence_ items are noise crops)
    a, b = (build_data(DataConfig(root=str(speech_commands_root), split="hash"), seed=s) for s in (0, 7))
    silence = [i for i, (p, _) in enumerate(a.val.items) if p is None]
    assert silence and all(torch.equal(a.val[i][0], b.val[i][0]) for i in silence)
