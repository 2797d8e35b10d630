"""Training curves from metrics.csv (the drawing a fit leaves is checked in test_cyclegan.py)."""

from __future__ import annotations

import csv

from voiceconv.training.curves import TrainingCurves, draw_curves, read_metrics

COLUMNS = ["epoch", "step", "train/g_loss", "train/g_cycle", "train/d_a_real",
           "train/identity_weight", "lr/generators", "val/mcd_mean_envelope"]


def write_metrics(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_a_resumed_run_draws_the_values_it_went_on_with_and_each_metric_in_its_panel(tmp_path):
    rows = [{"epoch": 0, "step": s, "train/g_loss": 10.0 - s, "train/g_cycle": 1.0 / (s + 1),
             "train/d_a_real": 0.5, "train/identity_weight": 5.0 if s < 3 else 0.0,
             "lr/generators": 5e-4} for s in range(6)]
    rows.append({"epoch": 0, "step": 5, "val/mcd_mean_envelope": 0.9})
    # Resumed from step 3: steps 4 and 5 trained again, to other values.
    rows += [{"epoch": 0, "step": s, "train/g_loss": 20.0 + s, "train/g_cycle": 0.1,
              "train/d_a_real": 0.4, "train/identity_weight": 0.0, "lr/generators": 5e-4}
             for s in (4, 5)]
    write_metrics(tmp_path / "metrics.csv", rows)
    with open(tmp_path / "metrics.csv", "a") as fh:
        fh.write("0,6,3.5e")  # a line cut short by a kill: what it holds is read, the rest not

    metrics = read_metrics(tmp_path / "metrics.csv")
    steps, values = metrics["train/g_loss"]
    assert steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert values.tolist() == [10.0, 9.0, 8.0, 7.0, 24.0, 25.0]  # nothing read at step 6
    assert metrics["val/mcd_mean_envelope"][0].tolist() == [5]

    drawn = draw_curves(tmp_path / "metrics.csv", tmp_path / "curves.png")
    assert [(title, names) for title, names, *_ in drawn] == [
        ("total losses", ["train/g_loss"]),
        ("generator loss terms", ["train/g_cycle"]),
        ("discriminator loss terms", ["train/d_a_real"]),
        ("validation", ["val/mcd_mean_envelope"]),
        ("learning rates", ["lr/generators"]),
        ("schedules", ["train/identity_weight"])]
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "metrics.csv"]


def test_a_run_with_nothing_logged_yet_draws_nothing(tmp_path):
    write_metrics(tmp_path / "metrics.csv", [])
    assert draw_curves(tmp_path / "metrics.csv", tmp_path / "curves.png") == []
    assert not (tmp_path / "curves.png").exists()


def test_curves_are_redrawn_after_a_validation_at_most_once_per_interval_and_at_the_end(
        tmp_path):
    write_metrics(tmp_path / "metrics.csv", [{"epoch": 0, "step": 1, "train/g_loss": 1.0}])

    class Trainer:  # what the callback reads of Lightning's trainer
        is_global_zero, sanity_checking, loggers = True, False, []

    often = TrainingCurves(str(tmp_path / "metrics.csv"), str(tmp_path / "often.png"),
                           min_interval_s=0)
    often.on_validation_end(Trainer(), None)
    assert (tmp_path / "often.png").is_file()
    rarely = TrainingCurves(str(tmp_path / "metrics.csv"), str(tmp_path / "rarely.png"),
                            min_interval_s=3600)
    rarely.on_validation_end(Trainer(), None)
    assert not (tmp_path / "rarely.png").exists()  # drawn less than an hour ago: at start
    rarely.on_train_end(Trainer(), None)
    assert (tmp_path / "rarely.png").is_file()
