"""The vocoder stage: training an NSF-HiFi-GAN with `voiceconv fit` (the renderers themselves,
trained or not, are `voiceconv.models.vocoders`)."""
