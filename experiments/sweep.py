"""Ray Tune ablations of the RL core (NAT++ Fig. 7, Table 5; NAT Table 3) for NAT and NAT++, over several seeds.

Run:
    python experiments/sweep.py                                   # every ablation, NB201 tabular reward, 3 seeds
    python experiments/sweep.py --ablations lam gcn_layers --seeds 5 --out sweeps/fig7
    python experiments/sweep.py --preset papers --ablations lam   # each rule's paper recipe (m = n = 1, 93,800 updates)
    python experiments/sweep.py --resume sweeps/fig7              # continue an interrupted sweep (unpickles nothing)
    python experiments/sweep.py --reward supernet --data CIFAR10 --num-gpus 1 --ablations lam

Ablations (each a Tune grid; every trial is one train_natpp run with the other knobs at its --preset's values:
natrl, our defaults, 1,500 updates of m=32 x n=2; or papers, NAT trials on NAT's recipe and NAT++ trials on NAT++'s):
    lam         entropy weight lambda in {3e-4, 3e-3, 3e-2, 3e-1, 3}             (NAT++ Fig. 7b)
    gcn_layers  GCN depth in {1, 2, 5, 10}                                      (NAT++ Fig. 7a)
    m           inputs per update in {1, 5, 10, 30} with n = 1                  (NAT++ Table 5, with search cost)
    n           samples per input in {1, 5, 10, 30} with m = 1                  (NAT++ Table 5)
    policy      random, lstm, gcn (the gcn run gives Maximum- and Sampling-GCN)  (NAT Table 3)

Each trial reserves a placement group (its own CPU, plus one bundle per supernet shard) and reports its
progress to Tune at most once a second, each report carrying its policy update count, which --scheduler asha
reads as time; its run directory is tune/<trial>/run. The sweep directory
(default sweeps/<name>) holds config.json, log.txt, tune/ (Tune's state and the trials), trials.csv and
status.json. The analysis/ scripts read it. Expected (NB201, 2 cores, --preset natrl): a trial takes well under
a minute, two at a time.

--resume rebuilds the grid from the sweep's config.json: finished trials are reported from their results.json,
the others run in a fresh Tuner and continue from their run's plain-tensor checkpoint. Tune's own state files
(tuner.pkl, experiment_state-*.json, params.pkl) and RLlib's pickles are never read. On a multi-node cluster
(--address / RAY_ADDRESS) give --out a folder every node mounts at the same path, or --storage s3://BUCKET/PATH
(any pyarrow.fs URI): Tune's state, the trial logs and each trial's run directory (tune/<trial>/run) go there.
"""

from natrl import cli
from natrl.runs.sweep import SweepConfig, sweep


def main(argv=None):
    return cli.main(SweepConfig, sweep, __doc__, argv)


if __name__ == "__main__":
    main()
