import sys

from voiceconv.cli import run_command

sys.exit(run_command("prep", sys.argv[1:], prog="python -m data_prep"))
