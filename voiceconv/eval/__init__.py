"""`voiceconv eval`: metrics.json and report.html for converted singing."""
