"""ITNAS: inter-layer transition search (annealed Gumbel softmax, transition matrices, TIEP)."""
