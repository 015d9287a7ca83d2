"""User-facing errors: one line that names the problem and the fix, never a traceback."""

from __future__ import annotations

import argparse
import functools
import sys


class NatrlError(ValueError):
    """Bad user input (a genotype, a file, a flag). The message is shown as one line."""


def cli_entry(main):
    """Wrap a script's ``main`` so that bad input exits with status 2 and one line on stderr."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except NatrlError as e:
            prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "natrl"
            print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt as e:  # a message, when given, says what was kept and how to continue
            print(str(e) or "interrupted; a run with a checkpoint continues with --resume RUN_DIR", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and points to --help."""

    def error(self, message):
        message = " ".join(str(message).split())  # a value with a newline in it stays on one line
        if message.endswith("expected one argument"):  # argparse reads '--lam -1' as two flags
            message += "; a negative value is written --flag=-1"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
