"""`voiceconv fit`: train the CycleGAN A <-> B for a singer pair (or any voiceconv module from its
YAML)."""
