"""Inspect an architecture or a transition rule.

Run:
    python analysis/arch_info.py DARTS_V2                     # params/MAdds on CIFAR-10 and the two cells
    python analysis/arch_info.py NATv2_DARTS --dataset imagenet --json
    python analysis/arch_info.py my_cell.json --plot cells.png [--force]
    python analysis/arch_info.py '|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|'
    python analysis/arch_info.py --transitions natpp [--json]  # vocabulary and valid-transition matrix
    python analysis/arch_info.py --list                        # registry names

Expected: DARTS_V2 on CIFAR-10 prints 3.35M params and 528.4M MAdds (the papers: 3.3M / 528M).
Bad input (unknown name, malformed JSON, invalid cell, an existing --plot file without --force) exits with
status 2 and one line on stderr.
"""

import sys

from natrl import cli
from natrl.tables.arch_info import ArchInfoConfig, arch_info
from natrl.tables.common import with_positionals


def main(argv=None):
    return cli.main(ArchInfoConfig, arch_info, __doc__, with_positionals(ArchInfoConfig, argv, "arch"))


if __name__ == "__main__":
    main()
    sys.exit(0)
