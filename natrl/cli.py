"""What every command line shares: parse a typed config, run the library function, errors as one line.

python experiments/search_itnas.py ...   ->   cli.main(SearchConfig, search, __doc__)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from natrl.config import parse_config
from natrl.errors import cli_entry


def main(cfg_cls, run: Callable[..., Any], doc: str | None, argv=None, defaults: dict | None = None):
    """Parse ``argv`` into ``cfg_cls`` (``--help`` shows ``doc`` and every knob's doc), then
    ``run(cfg, given)`` where ``given`` names the flags on the command line. Bad input exits 2 with one line."""
    from natrl.rundir import quiet_ray_logs

    quiet_ray_logs()  # library notices (RLlib deprecations) are not the user's concern
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None

    @cli_entry
    def entry():
        cfg, given = parse_config(cfg_cls, argv, prog=prog, description=doc, defaults=defaults)
        return run(cfg, given)

    return entry()
