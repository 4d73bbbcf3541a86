"""A stand-in for a DCASE feature-cache split, for tests of what is read from its rows."""


class CacheSplit:
    """Rows of .npy sets (dev, eval, aug-<scope>): the attributes clip_keys and split checks read."""

    def __init__(self, paths, src, rows, labels):
        self.paths, self.src, self.rows, self.labels = paths, src, rows, labels

    def __len__(self):
        return len(self.rows)


def dev_and_mixed() -> tuple[CacheSplit, CacheSplit]:
    """Two dev rows, and the same two with one shuffle-and-mix row of aug-train added."""
    dev = CacheSplit(["c/dev/x.npy"], [0, 0], [0, 1], [0, 1])
    mixed = CacheSplit(["c/dev/x.npy", "c/aug-train/y.npy"], [0, 0, 1], [0, 1, 0], [0, 1, 0])
    return dev, mixed
