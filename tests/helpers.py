"""Test-only Lightning callbacks, importable by class path from `voiceconv fit` subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import lightning as L

from voiceconv.fit.data import SingerPairData


class SignalAtStep(L.Callback):
    """Send `signal_name` to this very process once `step` training steps are done; with
    `process_group`, to its whole process group (loader workers too), as SLURM and `timeout`
    do; with `in_validation`, as that step's validation starts instead (after the step's
    callbacks have looked for signals)."""

    def __init__(self, step: int, signal_name: str = "SIGKILL",
                 process_group: bool = False, in_validation: bool = False) -> None:
        self.step, self.signum = step, getattr(signal, signal_name)
        self.process_group, self.in_validation = process_group, in_validation

    def on_validation_start(self, trainer, pl_module) -> None:
        if self.in_validation and trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.in_validation:
            if self.process_group:  # from outside, a moment later, while it waits on its loader
                subprocess.Popen(["sh", "-c", f"sleep 0.2; kill -s {self.signum.name[3:]} "
                                  f"-- -{os.getpgid(0)}"])
            else:
                os.kill(os.getpid(), self.signum)


class SlowPairData(SingerPairData):
    """SingerPairData whose training batches take `seconds` each to make: a run that waits on
    its loader, as a GPU run with CPU-made batches does."""

    def __init__(self, *args, seconds: float = 2.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = seconds

    def setup(self, stage: str) -> None:
        super().setup(stage)
        make = self.train_set.batch

        def slow(index: int):
            time.sleep(self.seconds)
            return make(index)

        self.train_set.batch = slow
