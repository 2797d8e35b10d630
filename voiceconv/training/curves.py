"""Training curves drawn from a run's `metrics.csv`: `curves.png` beside it, so a run's losses
can be looked at on a cluster without a browser, a wandb account or a network."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from voiceconv.core.fileio import atomic_path


def _is_schedule(name: str) -> bool:
    """Logged settings that follow the step (a loss weight, a freeze flag), not losses."""
    return name.endswith(("_weight", "_frozen"))


# Panels in drawing order: (title, whether a metric belongs to it, log scale where every value
# is positive, noisy per-step values smoothed). A metric goes to the first panel that takes it.
# Loss terms are logged unweighted and differ by orders of magnitude: their panels are
# logarithmic. Settings are drawn as they are: smoothing would blur a step into a ramp.
PANELS = (
    ("total losses", lambda name: name.startswith("train/") and name.endswith("loss"), True,
     True),
    ("generator loss terms", lambda name: name.startswith("train/g_"), True, True),
    ("discriminator loss terms", lambda name: name.startswith("train/d"), True, True),
    ("training losses", lambda name: name.startswith("train/") and not _is_schedule(name),
     True, True),
    ("validation", lambda name: name.startswith("val/"), False, False),
    ("gradient norms", lambda name: name.startswith("grad_norm/"), True, True),
    ("learning rates", lambda name: name.startswith("lr/"), True, False),
    ("schedules", lambda name: _is_schedule(name), False, False),
)

Panel = tuple[str, list[str], bool, bool]  # title, metric names, log scale, smoothed


def read_metrics(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metrics.csv -> {metric: (steps, values)}, in step order. A resumed run logs the steps
    after its checkpoint again: the later value of a step wins, as that is the run that went on."""
    by_metric: dict[str, dict[int, float]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            step = _number(row.get("step") or "")
            if not math.isfinite(step):
                continue
            for name, value in row.items():
                if name in ("step", "epoch") or value in ("", None):
                    continue
                number = _number(value)
                if math.isfinite(number):
                    by_metric.setdefault(name, {})[int(step)] = number
    return {name: (np.array(sorted(points)), np.array([points[s] for s in sorted(points)]))
            for name, points in by_metric.items()}


def _number(text: str) -> float:
    """A logged value; NaN for what is not a number (a line cut short by a killed run)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def panels(metrics: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[Panel]:
    """The panels with something to show; each metric in the first panel that takes it."""
    left = sorted(metrics)
    chosen = []
    for title, belongs, log, smooth in PANELS:
        names = [name for name in left if belongs(name)]
        left = [name for name in left if name not in names]
        if names:
            chosen.append((title, names, log, smooth))
    return chosen


def draw_curves(metrics_csv: Path, out: Path) -> list[Panel]:
    """Draw every panel of `metrics_csv` into the PNG `out` (atomically); returns the panels.
    Noisy per-step losses are drawn faint, with a moving average over them."""
    from voiceconv.core.plotting import png_bytes, pyplot

    metrics = read_metrics(metrics_csv)
    chosen = panels(metrics)
    if not chosen:
        return chosen
    plt = pyplot()
    # A fixed layout: matplotlib's automatic ones took most of the drawing's 1.2 s.
    height = 1.9 * len(chosen)
    fig, axes = plt.subplots(len(chosen), 1, figsize=(8, height), sharex=True, squeeze=False)
    fig.subplots_adjust(left=0.09, right=0.98, top=1 - 0.25 / height, bottom=0.45 / height,
                        hspace=0.3)
    for ax, (title, names, log, smooth) in zip(axes[:, 0], chosen, strict=True):
        for name in names:
            steps, values = metrics[name]
            label = name.split("/", 1)[-1]
            if smooth and len(values) > 20:
                line, = ax.plot(steps, values, linewidth=0.6, alpha=0.3)
                ax.plot(steps, _moving_average(values, max(3, len(values) // 20)),
                        color=line.get_color(), linewidth=1.4, label=label)
            else:
                ax.plot(steps, values, marker="o" if len(values) < 50 else None,
                        markersize=3, linewidth=1.2, label=label)
        if log and all((metrics[n][1] > 0).all() for n in names):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9, loc="left")
        ax.legend(fontsize=7, ncol=min(4, len(names)), loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    with atomic_path(out) as tmp:
        tmp.write_bytes(png_bytes(fig, tight=False))
    return chosen


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred where it can be; the ends average what they have."""
    kernel = np.ones(window)
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


class TrainingCurves(L.Callback):
    """Redraw `<run>/curves.png` from the run's `metrics.csv` after a validation, at most once
    every `min_interval_s` (a drawing takes about half a second), and when training ends; on
    the main process, after flushing the loggers."""

    def __init__(self, metrics_csv: str, out: str, min_interval_s: float = 60.0) -> None:
        self.metrics_csv, self.out = Path(metrics_csv), Path(out)
        self.min_interval_s = min_interval_s
        self.last_drawn = time.monotonic()

    def draw(self, trainer: L.Trainer) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        for logger in trainer.loggers:
            logger.save()
        if self.metrics_csv.is_file():
            try:
                draw_curves(self.metrics_csv, self.out)
            # A full disk or a metrics file caught mid-write is not worth stopping training for.
            except (OSError, csv.Error) as exc:
                rank_zero_warn(f"could not draw {self.out}: {exc}")
        self.last_drawn = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if time.monotonic() - self.last_drawn >= self.min_interval_s:
            self.draw(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.draw(trainer)
