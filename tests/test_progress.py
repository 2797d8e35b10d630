"""The training progress bar after a resume, and on endless data."""

import lightning as L
from lightning.pytorch.demos.boring_classes import BoringModel, RandomIterableDataset
from torch.utils.data import DataLoader

from voiceconv.training.callbacks import ResumedProgressBar


class BarSpy(L.Callback):
    """Records (initial, n) of the progress bar after each training batch."""

    def __init__(self, bar: ResumedProgressBar) -> None:
        self.bar, self.seen = bar, []

    def on_train_batch_end(self, *args) -> None:
        self.seen.append((self.bar.train_progress_bar.initial, self.bar.train_progress_bar.n))


def fit(tmp_path, max_steps: int, ckpt_path=None) -> list[tuple[int, int]]:
    bar = ResumedProgressBar()
    spy = BarSpy(bar)
    trainer = L.Trainer(max_steps=max_steps, callbacks=[bar, spy], logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        accelerator="cpu", default_root_dir=tmp_path)
    trainer.fit(BoringModel(), ckpt_path=ckpt_path)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    return spy.seen


def test_a_resumed_run_counts_its_rate_from_the_restored_step(tmp_path):
    """tqdm's rate is (n - initial) / elapsed: initial must be the restored batch, or the bar
    shows hundreds of steps per second and no time left after every pre-emption."""
    assert fit(tmp_path, 4) == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert fit(tmp_path, 6, tmp_path / "last.ckpt") == [(4, 5), (4, 6)]
    # Resumed at 6 into an epoch of 64 batches: the next epoch counts from zero again.
    assert fit(tmp_path, 66, tmp_path / "last.ckpt")[-3:] == [(6, 64), (0, 1), (0, 2)]


class EndlessModel(BoringModel):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomIterableDataset(32, 10**9))  # no length, like voiceconv's crops


def test_a_run_on_endless_data_resumed_mid_epoch_shows_its_total(tmp_path):
    """The total is max_steps; Lightning's is the steps left (2 after the resume at 4)."""
    def run(max_steps: int, ckpt_path=None) -> tuple:
        bar = ResumedProgressBar()
        trainer = L.Trainer(max_steps=max_steps, callbacks=[bar], logger=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            accelerator="cpu", limit_val_batches=0, default_root_dir=tmp_path)
        trainer.fit(EndlessModel(), ckpt_path=ckpt_path)
        trainer.save_checkpoint(tmp_path / "last.ckpt")
        tqdm = bar.train_progress_bar
        return tqdm.initial, tqdm.n, tqdm.total

    assert run(4) == (0, 4, 4)
    assert run(6, tmp_path / "last.ckpt") == (4, 6, 6)
