"""The training progress bar after a resume."""

import lightning as L
from lightning.pytorch.demos.boring_classes import BoringModel

from voiceconv.callbacks import ResumedProgressBar


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
