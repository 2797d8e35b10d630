"""Errors a user can act on: the CLI prints their message as one line, never a traceback."""


class VoiceconvError(Exception):
    """Something about the user's input or setup is wrong; the message says what."""


class AudioDecodeError(VoiceconvError):
    """A file could not be read as audio."""


class FeatureConfigMismatch(VoiceconvError):
    """Two parts of the pipeline were built with different feature settings."""
