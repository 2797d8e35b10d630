"""Lightning plumbing shared by every training stage: the LightningCLI behind `voiceconv fit` and
`voiceconv pretrain`, atomic and step-exact checkpoints, exact resume, logging, progress,
previews, and resumable crop data."""
