"""ITNAS: constraints of P and beta, gradients, the Gumbel schedule, TIEP on a hand-worked example, the search."""

import json

import numpy as np
import pytest
import torch

from natrl.itnas.arch import DARTS_GRAPH, ITNAS_OPS, NB201_GRAPH, ArchitectureWeights, gumbel_tau, tiep_cell, top_k_cell


def test_transition_matrices_row_stochastic_and_attention_sums_to_one():
    torch.manual_seed(0)
    for graph in (DARTS_GRAPH, NB201_GRAPH):
        arch = ArchitectureWeights(graph, 7, transition=True, init_scale=3.0)  # far from uniform
        P = arch.transition_matrices()
        assert P.shape == (len(graph.pairs), 7, 7) and (P >= 0).all()
        torch.testing.assert_close(P.sum(-1), torch.ones(len(graph.pairs), 7))
        for e, edge in enumerate(graph.edges):
            if not graph.is_outer(edge):
                idx, beta = arch.attention(e)
                assert len(idx) == edge[0]  # every edge into node i is a predecessor of (i, j)
                torch.testing.assert_close(beta.sum(), torch.tensor(1.0))
                idx, beta = arch.attention(e, kept=[graph.incoming(edge[0])[0]])  # renormalised over what is kept
                assert len(idx) == 1 and float(beta.detach()) == pytest.approx(1.0)
        for gumbel in (False, True):  # so every edge's Z is a distribution, the inner ones included
            Z = arch.weights(tau=0.7, gumbel=gumbel, generator=torch.Generator().manual_seed(1))
            torch.testing.assert_close(Z.sum(-1), torch.ones(len(graph.edges)))
    assert len(DARTS_GRAPH.pairs) == 16 and len(NB201_GRAPH.pairs) == 4


def test_gradients_reach_alpha_P_and_beta():
    from natrl.itnas.search import DartsSearchNetwork, NB201SearchNetwork
    from natrl.ops import NB201_OPS

    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    for net, graph, ops, kinds in (
        (DartsSearchNetwork(ITNAS_OPS, 2, 3), DARTS_GRAPH, ITNAS_OPS, ("normal", "reduce")),
        (NB201SearchNetwork(NB201_OPS, 2, 1), NB201_GRAPH, NB201_OPS, ("normal",)),
    ):
        arch = {k: ArchitectureWeights(graph, len(ops), transition=True) for k in kinds}
        Z = {k: a.weights(tau=5.0, gumbel=True, generator=torch.Generator().manual_seed(0)) for k, a in arch.items()}
        torch.nn.functional.cross_entropy(net(x, Z), y).backward()
        for a in arch.values():
            assert (a.alpha.grad.abs().sum(-1) > 0).all()  # every outer edge
            assert (a.P_logits.grad.abs().sum((-1, -2)) > 0).all()  # every transition matrix
            # every attention weight over >= 2 predecessors; over one (NB201's (1,2), (1,3)) beta is 1 by Eqn. 12
            multi = torch.tensor([len(a.attention(e)[0]) > 1 for _, e in graph.pairs])
            assert (a.beta_logits.grad[multi].abs() > 0).all() and (a.beta_logits.grad[~multi] == 0).all()
            assert multi.any()


def test_gumbel_annealing_schedule():
    assert gumbel_tau(0, 50) == 5.0 and gumbel_tau(49, 50) == pytest.approx(0.5)
    assert gumbel_tau(10, 11) == pytest.approx(0.5) and gumbel_tau(5, 11) == pytest.approx(2.75)  # linear
    taus = [gumbel_tau(e, 8) for e in range(8)]
    assert all(a > b for a, b in zip(taus, taus[1:])) and np.allclose(np.diff(taus), -4.5 / 7)
    # low temperature -> nearly one-hot samples; high -> soft
    arch = ArchitectureWeights(DARTS_GRAPH, 7, transition=False)
    g = torch.Generator().manual_seed(0)
    sharp = torch.stack([arch.weights(0.05, True, g).max(-1).values for _ in range(100)]).mean()
    soft = torch.stack([arch.weights(5.0, True, g).max(-1).values for _ in range(100)]).mean()
    assert sharp > 0.95 and soft < 0.4
    # the search reads the schedule per epoch
    from natrl.itnas.search import ITNASSearch, SearchSettings

    data = {"train_x": np.zeros((8, 32, 32, 3), np.uint8), "train_y": np.arange(8) % 10}
    s = ITNASSearch(SearchSettings(space="nb201", channels=2, layers=1, epochs=3, batch_size=4), data)
    seen = []
    for _ in range(3):
        seen.append(s.train_epoch()["tau"])
    assert seen == [5.0, 2.75, 0.5]


def _hand_example(K=3):
    """alpha, P and beta set by hand (see test_tiep_on_a_hand_worked_example)."""
    arch = ArchitectureWeights(DARTS_GRAPH, K, transition=True)
    edges = DARTS_GRAPH.edges
    outer = {
        (0, 2): [0.8, 0.1, 0.1],
        (1, 2): [0.1, 0.8, 0.1],
        (0, 3): [0.2, 0.1, 0.7],
        (1, 3): [0.4, 0.3, 0.3],
        (0, 4): [0.5, 0.25, 0.25],
        (1, 4): [0.3, 0.3, 0.4],
        (0, 5): [0.9, 0.05, 0.05],
        (1, 5): [0.2, 0.2, 0.6],
    }
    beta = {
        (2, 3): [0.75, 0.25],
        (2, 4): [0.4, 0.6],
        (3, 4): [0.35, 0.5, 0.15],
        (2, 5): [0.5, 0.5],
        (3, 5): [0.1, 0.1, 0.8],
        (4, 5): [0.25, 0.25, 0.25, 0.25],
    }  # over the predecessors (0,i), (1,i), (2,i), ... in that order
    with torch.no_grad():
        for r, e in enumerate(arch.free_edges):
            arch.alpha[r] = torch.log(torch.tensor(outer[edges[e]]))
        arch.P_logits.copy_(50.0 * torch.eye(K).expand_as(arch.P_logits))  # P = identity: op s -> op s
        for edge, probs in beta.items():
            idx, _ = arch.attention(edges.index(edge))
            arch.beta_logits[idx] = torch.log(torch.tensor(probs))
    return arch


def test_tiep_on_a_hand_worked_example():
    """Worked by hand, ops a, b, c; P = identity:
    node 2: keeps (0,2) a [.8] and (1,2) b [.8], now one-hot.
    node 3: Z(2,3) = .75 e_a + .25 e_b -> max .75 (a); (0,3) .7 (c); (1,3) .4 -> pruned.
    node 4: Z(2,4) = .4 e_a + .6 e_b -> .6 (b); Z(3,4) over the *kept* (0,3), (2,3): beta .35, .15 renormalised
            to .7, .3 -> .7 e_c + .3 e_a -> .7 (c); (0,4) .5, (1,4) .4 -> keep (2,4) b, (3,4) c.
    node 5: (0,5) .9 (a); Z(3,5) over kept (0,3), (2,3): 1/9 e_c + 8/9 e_a -> .889 (a); (1,5) .6; Z(2,5) .5;
            Z(4,5) over kept (2,4), (3,4): .5 e_b + .5 e_c -> .5 -> keep (0,5) a, (3,5) a.
    DARTS' top-2 on the soft weights instead scores Z(3,4) = .35 Z(0,3) + .5 Z(1,3) + .15 Z(2,3), with the soft
    Z(2,3) = .75 Z(0,2) + .25 Z(1,2) = [.625, .275, .1]: [.36375, .22625, .41] -> .41 < (0,4)'s .5
    and Z(2,4) = .4 Z(0,2) + .6 Z(1,2) = [.38, .52, .1]: node 4 keeps
    (0,4) a and (2,4) b."""
    arch = _hand_example()
    ops = ("a", "b", "c")
    assert tiep_cell(arch, ops) == [
        ("a", 0, 2),
        ("b", 1, 2),
        ("c", 0, 3),
        ("a", 2, 3),
        ("b", 2, 4),
        ("c", 3, 4),
        ("a", 0, 5),
        ("a", 3, 5),
    ]
    Z = arch.probabilities()
    torch.testing.assert_close(Z[DARTS_GRAPH.edges.index((3, 4))], torch.tensor([0.36375, 0.22625, 0.41]))
    soft = top_k_cell(Z, DARTS_GRAPH, ops)
    assert [e for e in soft if e[2] == 4] == [("a", 0, 4), ("b", 2, 4)]
    with pytest.raises(ValueError, match="needs transition learning"):
        tiep_cell(ArchitectureWeights(DARTS_GRAPH, 3, transition=False), ops)


def test_nb201_tiep_keeps_every_edge():
    arch = ArchitectureWeights(NB201_GRAPH, 5, transition=True, init_scale=2.0)
    from natrl.ops import NB201_OPS

    cell = tiep_cell(arch, NB201_OPS)
    assert [(s, d) for _, s, d in cell] == list(NB201_GRAPH.edges)


# ---- the search and its command line ---------------------------------------------------------------------------

SCRIPT = "experiments/search_itnas.py"


def search_main(argv):
    """experiments/search_itnas.py's main, in this process."""
    from natrl import cli
    from natrl.runs import itnas

    return cli.main(itnas.SearchConfig, itnas.run, None, [str(a) for a in argv])


def _search_args(data, out, space="nb201", variant="itnas", epochs=2):
    return [
        "--space",
        space,
        "--variant",
        variant,
        "--data",
        str(data),
        "--preset",
        "tiny",
        "--epochs",
        str(epochs),
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "4",
        "--channels",
        "2",
        "--layers",
        "1" if space == "nb201" else "3",
        "--train-subset",
        "0",
        "--seed",
        "4",
        "--out",
        str(out),
    ]


@pytest.fixture
def cifar(tmp_path_factory):
    from test_datasets import make_image_folder

    root = tmp_path_factory.mktemp("data") / "cifar"
    make_image_folder(root, n=4)
    return root


def _progress(d):
    import csv

    with open(d / "progress.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


@pytest.mark.slow
def test_search_resume_after_a_kill_matches_and_feeds_nat_and_train_eval(tmp_path, cifar, monkeypatch, script):
    from natrl.rundir import RunDir

    full, killed = tmp_path / "full", tmp_path / "killed"
    search_main(_search_args(cifar, full, space="darts"))
    original = RunDir.save_checkpoint

    def save_then_die(self, state):
        original(self, state)
        if state["progress_rows"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    with pytest.raises(SystemExit) as e:
        search_main(_search_args(cifar, killed, space="darts"))
    assert e.value.code == 130 and len(_progress(killed)) == 1 and not (killed / "results.json").exists()
    monkeypatch.setattr(RunDir, "save_checkpoint", original)
    search_main(["--resume", killed])
    assert _progress(killed) == _progress(full) and len(_progress(full)) == 2
    a, b = (torch.load(d / "arch.pt", weights_only=True) for d in (full, killed))
    assert all(torch.equal(a[k], b[k]) for k in a) and "normal.P" in a and "reduce.beta_logits" in a
    log = (killed / "log.txt").read_text()
    assert log.count("run directory:") == 2 and "(resumed)" in log and "resumed after epoch 1" in log  # continued
    assert json.loads((killed / "config.json").read_text())["kind"] == "itnas"

    # the found genotype is a valid NAT++ input (its ops are in the NAT++ vocabulary) and trains from scratch
    from natrl.cells import load_genotype
    from natrl.spaces import make_space

    g = load_genotype(full / "genotype.json")
    make_space("darts").encode(g)
    r = script(
        "experiments/train_eval.py",
        "--arch",
        full / "genotype.json",
        "--data",
        cifar,
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--train-subset",
        "8",
        "--batch-size",
        "4",
        "--layers",
        "3",
        "--channels",
        "2",
        "--out",
        tmp_path / "eval",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["arch"] == "genotype"


def test_search_nb201_reports_table_accuracy(tmp_path, cifar):
    from natrl.cells import from_arch_str
    from natrl.rewards import NB201Table

    search_main(_search_args(cifar, tmp_path / "run", variant="darts", epochs=1))
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    table = NB201Table.load()
    assert res["reward_acc"] == float(table.score([from_arch_str(res["genotype_text"])])[0])
    assert res["reward_best"] == float(table.accuracy.max()) and 0 <= res["reward_percentile"] <= 100
    assert {"genotype.json", "genotype.png", "arch.pt", "checkpoint.pt", "progress.csv", "log.txt"} <= set(
        p.name for p in (tmp_path / "run").iterdir()
    )
    assert not list((tmp_path / "run").glob("*.tmp*"))  # every output went through a temporary file


def test_presets_fill_only_the_knobs_not_given():
    from natrl.config import parse_config
    from natrl.runs.itnas import PRESETS, SearchConfig

    cfg, given = parse_config(SearchConfig, ["--space", "nb201", "--preset", "tiny", "--data", "D", "--epochs", "3"])
    assert cfg.epochs == 3 and cfg.channels == PRESETS[("nb201", "tiny")]["channels"] and given >= {"epochs"}
    cfg, _ = parse_config(SearchConfig, ["--data", "D"])
    assert (cfg.layers, cfg.epochs) == (8, 50)
    cfg, _ = parse_config(SearchConfig, ["--data", "D", "--space", "nb201"])
    assert cfg.layers == 5


def _bad_inputs(tmp_path, cifar):
    (tmp_path / "notdata.txt").write_text("hello")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    (tmp_path / "notrun").mkdir()
    (tmp_path / "natpp").mkdir()
    (tmp_path / "natpp" / "config.json").write_text(json.dumps({"kind": "train_natpp", "config": {"lam": 0.1}}))
    d = ["--data", cifar]
    return [
        ([], "--data is required"),
        (["--data", tmp_path / "missing"], "no CIFAR-10 data at"),
        (["--data", tmp_path / "notdata.txt"], "no CIFAR-10 data at"),
        (["--data", tmp_path / "empty"], "has no train/<class>/*.jpg"),
        ([*d, "--epochs", "nan"], "'nan' is not an integer"),
        ([*d, "--epochs", "-1"], "--epochs must be >= 1"),
        ([*d, "--epochs", "1e12"], "--epochs must be <= 100000"),
        ([*d, "--num-gpus", "2"], "--num-gpus must be <= 1"),
        ([*d, "--variant", "enas"], "invalid choice: 'enas'"),
        ([*d, "--ablation", "--variants", "darts", "enas"], "invalid choice: 'enas'"),
        ([*d, "--ablation", "--variants", "darts", "darts"], "names a variant twice"),
        ([*d, "--table", "t.csv"], "apply to --space nb201 only"),
        ([*d, "--space", "nb201", "--table", tmp_path], "is a directory"),
        ([*d, "--space", "nb201", "--table", tmp_path / "notdata.txt"], "notdata.txt is not a"),
        ([*d, "--space", "nb201", "--report-table", tmp_path / "missing.csv"], "does not exist"),
        (["--resume", tmp_path / "missing"], "is not a run directory"),
        (["--resume", tmp_path / "notrun"], "has no config.json"),
        (["--resume", tmp_path / "natpp"], "holds a train_natpp run, not an itnas run"),
    ]


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, cifar, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a default --out would land here
    for args, message in _bad_inputs(tmp_path, cifar):
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(SystemExit) as e:
            search_main([*args, "--out", tmp_path / "run"] if "--resume" not in args else args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
        assert sorted(tmp_path.rglob("*")) == before, args


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "--data is required"),
        (["--data", "/nonexistent"], "no CIFAR-10 data at /nonexistent"),
        (["--data", "X", "--variant", "enas"], "invalid choice: 'enas'"),
        (["--data", "X", "--table", "t.csv"], "apply to --space nb201 only"),
        (["--resume", "/nonexistent"], "/nonexistent is not a run directory"),
    ],
)
def test_search_cli_errors(script, tmp_path, args, message):
    r = script(SCRIPT, *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_help_shows_each_knobs_doc(script):
    r = script(SCRIPT, "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "seeds the supernet, the split, the data order and the Gumbel noise" in text
    assert "Ray cluster to join; default $RAY_ADDRESS or a local Ray" in text and "<= 100000" in text
    assert "../shared" not in r.stdout


def test_resume_refuses_other_flags_a_corrupt_checkpoint_and_a_finished_run_reruns(tmp_path, cifar, capsys):
    run = tmp_path / "run"
    search_main(_search_args(cifar, run, variant="darts", epochs=1))
    capsys.readouterr()
    log = (run / "log.txt").read_text()
    for args, message in (
        (["--epochs", "5"], "drop --epochs (saved 1)"),
        (["--space", "darts"], "drop --space (saved nb201)"),
    ):
        with pytest.raises(SystemExit):
            search_main(["--resume", run, *args])
        assert message in capsys.readouterr().err
    search_main(["--resume", run, "--seed", "4"])  # a flag that agrees with the saved config is fine
    assert len(_progress(run)) == 1
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    log = (run / "log.txt").read_text()
    with pytest.raises(SystemExit) as e:
        search_main(["--resume", run])
    assert e.value.code == 2 and "cannot read checkpoint" in capsys.readouterr().err
    assert (run / "log.txt").read_text() == log  # nothing was written before the check


def test_a_failed_start_leaves_no_directory(tmp_path, cifar, monkeypatch):
    from natrl.runs import itnas

    def fail(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(itnas, "train", fail)
    with pytest.raises(RuntimeError, match="boom"):
        search_main(_search_args(cifar, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    # the sweep the same way: an error after its directory was made, before Tune saved anything
    import natrl.cluster

    monkeypatch.setattr(natrl.cluster, "start_ray", lambda address=None, **kw: None)
    monkeypatch.setattr(natrl.cluster, "check_gpus", lambda n: None)
    monkeypatch.setattr(itnas, "make_tuner", fail)
    with pytest.raises(RuntimeError, match="boom"):
        search_main([*_search_args(cifar, tmp_path / "sweep"), "--ablation", "--seeds", "1"])
    assert not (tmp_path / "sweep").exists()


# ---- the Table 2 ablation ------------------------------------------------------------------------------------


def test_ablation_table_from_runs(tmp_path):
    from natrl.runs.itnas import ablation_table

    for variant, seed, acc in (("darts", 0, 80.0), ("darts", 1, 84.0), ("itnas", 0, 92.5)):
        d = tmp_path / "runs" / f"{variant}-s{seed}"
        d.mkdir(parents=True)
        (d / "results.json").write_text(
            json.dumps({"variant": variant, "seed": seed, "reward_acc": acc, "params_M": 0.5, "genotype_text": "|x|"})
        )
    md = ablation_table(tmp_path)
    assert "| darts | ✗ | ✗ | ✗ | 82.00 ± 2.00 | 0.500 ± 0.000 | 0 1 |" in md
    assert "| itnas | ✓ | ✓ | ✓ | 92.50 ± 0.00 | 0.500 ± 0.000 | 0 |" in md
    assert (tmp_path / "ablation.md").read_text() == md
    assert "darts,✗,✗,✗,82.00 ± 2.00" in (tmp_path / "ablation.csv").read_text()


def test_ablation_table_reads_top2_rows_from_itnas_searches(tmp_path):
    from natrl.errors import NatrlError
    from natrl.runs.itnas import ablation_table

    with pytest.raises(NatrlError, match="no finished searches"):
        ablation_table(tmp_path)
    d = tmp_path / "runs" / "itnas-s0"
    d.mkdir(parents=True)
    (d / "results.json").write_text(
        json.dumps(
            {
                "variant": "itnas",
                "seed": 0,
                "reward_acc": 91.0,
                "params_M": 0.5,
                "genotype_text": "|t|",
                "derivations": {
                    "top2": {"reward_acc": 88.0, "params_M": 0.4, "genotype_text": "|k|"},
                    "tiep": {"reward_acc": 91.0, "params_M": 0.5, "genotype_text": "|t|"},
                },
            }
        )
    )
    md = ablation_table(tmp_path)
    assert "| gumbel+transition | ✓ | ✓ | ✗ | 88.00 ± 0.00 | 0.400 ± 0.000 | 0 |" in md
    assert "| itnas | ✓ | ✓ | ✓ | 91.00 ± 0.00 |" in md and "read with DARTS' top-2" in md


@pytest.mark.slow
def test_ablation_sweep_runs_in_tune_and_resumes(tmp_path, cifar, script):
    sweep = tmp_path / "sweep"
    args = _search_args(cifar, sweep, variant="darts", epochs=1)
    r = script(SCRIPT, *args, "--ablation", "--variants", "darts", "--seeds", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((sweep / "runs" / "darts-s0" / "results.json").read_text())
    assert res["variant"] == "darts" and "reward_acc" in res
    assert "| darts | ✗ | ✗ | ✗ |" in (sweep / "ablation.md").read_text()
    assert json.loads((sweep / "config.json").read_text())["kind"] == "itnas-ablation"
    stamp = (sweep / "runs" / "darts-s0" / "results.json").stat().st_mtime_ns
    r = script(SCRIPT, "--resume", sweep)  # read from its results.json: not run again, Tune not started
    assert r.returncode == 0, r.stderr[-2000:]
    assert (sweep / "runs" / "darts-s0" / "results.json").stat().st_mtime_ns == stamp
    r = script(SCRIPT, "--resume", sweep, "--seeds", "2")
    assert r.returncode == 2 and "drop --seeds (saved 1)" in r.stderr
    r = script(SCRIPT, "--resume", sweep / "runs" / "darts-s0", "--epochs", "1")  # a trial's search resumes alone
    assert r.returncode == 0, r.stderr[-2000:]
