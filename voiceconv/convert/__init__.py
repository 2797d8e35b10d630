"""`voiceconv convert`: vocal stems in, converted stems (and mixes) out."""
