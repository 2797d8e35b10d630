"""`voiceconv fit`: train any voiceconv LightningModule from YAML through LightningCLI (the
CycleGAN of a singer pair, `voiceconv.fit.cyclegan`; a vocoder, `voiceconv.vocoder`).

    voiceconv fit --config recipes/demo/conf/fit.yaml [--trainer.max_steps N]
                  [--ckpt_path last] [--experiment NAME] [--print_config]

Everything lands in `<experiments_root>/<experiment>/`: the resolved `config.yaml`,
`checkpoints/` (`last.ckpt` every `checkpoint_every_n_steps` steps, at the end and on
SIGTERM/SIGUSR1; the best `save_top_k` by `monitor`), `metrics.csv` and `curves.png`, offline
wandb runs (`wandb sync` them later) and `previews/`. Rerunning the same command with
`--ckpt_path last` continues exactly where the last checkpoint left off (or starts, if there is
none).
"""

from __future__ import annotations

from voiceconv.training.config_files import require_config_files


def main(argv: list[str], prog: str = "voiceconv fit") -> int:
    require_config_files(argv, prog)
    from voiceconv.training.lightning_cli import run

    return run(argv, prog)
