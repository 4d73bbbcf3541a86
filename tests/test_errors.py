import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from audionas.errors import UserError


class _BadClip(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise UserError("clips/2.wav: 2 sample(s) are NaN or infinite (expected finite audio)")
        return torch.zeros(3)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_user_error_in_a_dataloader_worker_keeps_its_one_line(workers):
    with pytest.raises(UserError) as e:
        list(DataLoader(_BadClip(), batch_size=2, num_workers=workers))
    assert str(e.value) == "clips/2.wav: 2 sample(s) are NaN or infinite (expected finite audio)"
