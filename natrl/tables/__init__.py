"""The tables and figures of the papers, made from run directories: one module per family, each with its typed
config and its entry function, which the thin ``analysis/*.py`` command lines call through ``natrl.cli.main``.

    ablations      NAT++ Fig. 7 (GCN depth, lambda), NAT++ Table 5 (m, n), NAT Table 3 (policy learners)
    random_inputs  NAT++ Table 4 and Fig. 6 (random input cells vs their transformations)
    models         NAT++ Tables 1 and 3 (ours, trained from scratch, beside the quoted rows)
    quoted         the papers' numbers shown beside ours
    cells          NAT++ Fig. 5 (cell pictures)
    costs          params / MAdds of every registry architecture vs the papers
    arch_info      one architecture's costs and cells, or a transition rule's matrix
    common         what they share: the run-directory config, positional arguments, architecture parsing
"""
