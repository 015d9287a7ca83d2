"""The numbers quoted from the NAT++ paper (Tables 1 and 3) that analysis/table_models.py shows beside ours.

Run:
    python analysis/quoted.py --table 3        # or --table 1; Markdown on stdout, nothing is written

Expected: Table 3 lists ENAS, DARTS, NAONet and PC-DARTS with the rows /, NAO, ESNAC, APS, NAT, NAT++ (params M,
MAdds M, CIFAR-10 and CIFAR-100 accuracy %); Table 1 the hand-crafted models (MobileNetV2 has one NAT/NAT++ row).
The data live in natrl/tables/quoted.py.
"""

import sys

from natrl import cli
from natrl.tables.quoted import QuotedConfig, print_quoted


def main(argv=None):
    return cli.main(QuotedConfig, print_quoted, __doc__, argv)


if __name__ == "__main__":
    main()
    sys.exit(0)
