"""Networks of the CycleGAN-VC lineage: the 2-1-2D gated generator (an encoder and a decoder,
so pretrained encoders can be loaded), the PatchGAN discriminator, and FIF masking."""

from voiceconv.models.discriminator import PatchDiscriminator
from voiceconv.models.generator import Generator, GeneratorConfig
from voiceconv.models.masking import fif_mask

__all__ = ["Generator", "GeneratorConfig", "PatchDiscriminator", "fif_mask"]
