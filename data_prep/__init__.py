"""Data preparation: raw vocal stems in, cleaned segments with aligned features out.

Stages, one module each, every one a function over a manifest: ingest -> clean -> segment ->
features -> stats. `data_prep.pipeline.run_prep` drives them; `voiceconv prep` is the CLI.
"""

# In order; `voiceconv prep --stage` names them. Here, not in the pipeline, so that the CLI can
# print its help without importing torch and scipy.
STAGES = ("ingest", "clean", "segment", "features", "stats")
# The manifest each per-item stage writes under the output folder; the next stage reads it.
MANIFESTS = {"ingest": "stages/ingest.jsonl", "clean": "stages/clean.jsonl",
             "segment": "stages/segment.jsonl", "features": "manifest.jsonl"}
