"""Run kinds: the NAT/NAT++ transformer, ITNAS search, train-from-scratch, derive and Tune sweeps."""
