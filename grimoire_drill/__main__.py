"""``python -m grimoire_drill``: the same command as ``grimoire-drill``."""

from grimoire_drill.cli import console_main

if __name__ == "__main__":
    console_main()
