"""`voiceconv pretrain`: `voiceconv fit` for a pretraining config (`voiceconv.pretrain.encoder`
on `voiceconv.pretrain.pool` data), with the pretraining's own checkpoint metric.

    voiceconv pretrain --config recipes/common/conf/pretrain_small.yaml \
        --config recipes/pretrain/conf/pretrain.yaml [--ckpt_path last] [--trainer.max_steps N]
"""

from __future__ import annotations

from voiceconv.training.config_files import require_config_files


def main(argv: list[str], prog: str = "voiceconv pretrain") -> int:
    require_config_files(argv, prog)
    from voiceconv.training.lightning_cli import run

    return run(["--monitor", "val/l1_masked", *argv], prog)
