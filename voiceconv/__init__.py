"""voiceconv: singing voice conversion, from vocal stems to converted songs."""

__version__ = "0.1.0"
