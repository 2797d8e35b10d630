"""Test-only Lightning callbacks, importable by class path from `voiceconv fit` subprocesses."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAtStep(L.Callback):
    """Send `signal_name` to this very process once `step` training steps are done."""

    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step, self.signum = step, getattr(signal, signal_name)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
