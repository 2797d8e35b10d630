import sys

from data_prep.cli import main
from voiceconv.core.errors import run_as_command

sys.exit(run_as_command(main, sys.argv[1:], "python -m data_prep"))
