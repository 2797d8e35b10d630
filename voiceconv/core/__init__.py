"""The core every layer stands on: errors, atomic file IO, audio IO, the feature config and its
analysis (log-mel, F0), loudness, objective measures, the checkpoint reader. Imports nothing
else of voiceconv."""
