"""train_eval: training from scratch on tiny data the tests make; exact resume after a kill; every bad input is
one error line with nothing written; a diverging loss stops the run without results."""

import csv
import json

import pytest
import torch
from conftest import load_script

from natrl.errors import NatrlError
from natrl.rundir import RunDir
from natrl.runs import train_eval as lib

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    from test_datasets import make_image_folder

    root = tmp_path_factory.mktemp("data") / "cifar"
    make_image_folder(root, n=10)
    return root


@pytest.fixture(scope="module")
def te():
    return load_script("train_eval")


def _args(data, out, epochs=2, arch="NATv2_DARTS"):
    return [
        "--arch",
        arch,
        "--data",
        str(data),
        "--preset",
        "tiny",
        "--epochs",
        str(epochs),
        "--train-subset",
        "16",
        "--batch-size",
        "8",
        "--layers",
        "3",
        "--channels",
        "4",
        "--seed",
        "3",
        "--out",
        str(out),
    ]


def _die_after_epoch(monkeypatch, epoch):
    """A kill right after the checkpoint of ``epoch``."""
    original = RunDir.save_checkpoint

    def save_then_die(self, state):
        original(self, state)
        if state["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)


def _rows(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path / "progress.csv"))]


def _snapshot(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture
def killed_run(tmp_path, cifar, te, monkeypatch):
    """A two-epoch run killed after its first epoch's checkpoint."""
    out = tmp_path / "killed"
    with monkeypatch.context() as m:
        _die_after_epoch(m, 1)
        with pytest.raises(SystemExit) as e:
            te.main(_args(cifar, out, arch=NB201))
    assert e.value.code == 130
    assert (out / "checkpoint.pt").exists() and not (out / "results.json").exists()
    return out


# ---- runs ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, cifar, te, monkeypatch):
    full, killed = tmp_path / "full", tmp_path / "killed"
    te.main(_args(cifar, full))
    with monkeypatch.context() as m:
        _die_after_epoch(m, 1)
        with pytest.raises(SystemExit):
            te.main(_args(cifar, killed))
    assert (killed / "checkpoint.pt").exists() and not (killed / "results.json").exists()
    assert len(_rows(killed)) == 1
    te.main(["--resume", str(killed)])

    assert _rows(killed) == _rows(full) and len(_rows(full)) == 2
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (full, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    res = json.loads((full / "results.json").read_text())
    assert res["kind"] == "train_eval" and (res["model"], res["method"]) == ("DARTS", "NAT++")
    assert res["test_acc"] == json.loads((killed / "results.json").read_text())["test_acc"]
    assert res["params_M"] > 0 and res["madds_M"] > 0 and 0 <= res["test_acc"] <= 100
    assert "(resumed)" in (killed / "log.txt").read_text()
    saved = json.loads((killed / "config.json").read_text())
    assert saved["kind"] == "train_eval" and saved["config"]["epochs"] == 2 and saved["config"]["lr"] == 0.025


def test_nb201_arch_through_the_library_with_presets(tmp_path, cifar):
    cfg = lib.EvalConfig(
        arch=NB201,
        data=str(cifar),
        preset="tiny",
        epochs=1,
        train_subset=16,
        batch_size=8,
        layers=1,
        channels=4,
        out=str(tmp_path / "nb"),
    )
    out = lib.train(cfg)
    res = json.loads((out / "results.json").read_text())
    assert res["genotype"]["arch_str"] == NB201 and res["arch"] == "nb201" and res["epochs"] == 1
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["weight_decay"] == 3e-4 and saved["cutout"] == 16  # unset knobs took the tiny preset


def test_presets_are_data_and_given_knobs_win():
    from natrl.config import parse_config

    cfg, given = parse_config(lib.EvalConfig, ["--data", "D", "--preset", "tiny", "--epochs", "7"])
    assert (cfg.epochs, cfg.layers, cfg.train_subset) == (7, 5, 2000) and given == {"data", "preset", "epochs"}
    cfg, _ = parse_config(lib.EvalConfig, ["--data", "D", "--dataset", "imagenet"])
    assert (cfg.layers, cfg.channels, cfg.lr, cfg.label_smoothing) == (14, 48, 0.1, 0.1)
    assert lib.model_and_method("NAT_ENAS") == ("ENAS", "NAT") and lib.model_and_method("DARTS_V2") == ("DARTS", "/")


@pytest.mark.parametrize(
    "arch,network,recipe,cutout,batch",
    [
        ("ResNet20", "ResNet20", "handcrafted", 0, 128),  # hand-crafted: no cutout (the papers' rule)
        ("NATv2_MobileNetv2", None, "nas", 16, 96),  # a cell in the DARTS cell network
        ("R3", None, "random", 0, 128),  # NAT++ Table 4's random architectures: batch 128, no cutout
        ("NAT_R3", None, "random", 0, 128),
        ("DARTS_V2", None, "nas", 16, 96),
    ],
)
def test_recipe_follows_the_architecture(arch, network, recipe, cutout, batch):
    from natrl.config import parse_config

    cfg, _ = parse_config(lib.EvalConfig, ["--data", "D", "--arch", arch])
    assert (cfg.network, cfg.recipe, cfg.cutout, cfg.batch_size) == (network, recipe, cutout, batch)
    assert lib.model_and_method(arch, cfg.network)[0] == (network or lib.model_and_method(arch)[0])
    given, _ = parse_config(lib.EvalConfig, ["--data", "D", "--arch", arch, "--cutout", "8", "--recipe", "nas"])
    assert (given.cutout, given.recipe) == (8, "nas")  # what the user gives wins


@pytest.mark.slow
def test_handcrafted_network_trains_and_labels_its_table_row(tmp_path, cifar):
    """A derived cell file named NATv2_ResNet20.json goes back into ResNet20 (its own depth and widths)."""
    from natrl import zoo
    from natrl.cells import save_genotype

    arch = save_genotype(zoo.get("NATv2_ResBlock"), tmp_path / "NATv2_ResNet20.json")
    cfg = lib.EvalConfig(arch=str(arch), data=str(cifar), preset="tiny", epochs=1, train_subset=16, batch_size=8)
    res = json.loads((lib.train(dataclasses_replace(cfg, out=str(tmp_path / "r"))) / "results.json").read_text())
    assert (res["model"], res["method"], res["network"], res["recipe"], res["cutout"]) == (
        "ResNet20",
        "NAT++",
        "ResNet20",
        "handcrafted",
        0,
    )
    assert res["layers"] == 9 and res["channels"] == 16 and 0.2 < res["params_M"] < 0.3
    with pytest.raises(NatrlError, match="do not apply to the hand-crafted network ResNet20"):
        lib.train(dataclasses_replace(cfg, layers=3, out=str(tmp_path / "r2")))
    with pytest.raises(NatrlError, match="no hand-crafted network 'ResNet50' for cifar10"):
        lib.train(dataclasses_replace(cfg, network="ResNet50", out=str(tmp_path / "r3")))


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_help_shows_the_knob_docs(te, capsys):
    with pytest.raises(SystemExit) as e:
        te.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "drop-path probability" in out and "preset paper 600 (ImageNet 250)" in out and "--resume DIR" in out
    assert "<= 0.99" in out and "{cifar10,cifar100,imagenet}" in out
    assert "--ranks RANKS" in out and "DistributedDataParallel" in out


# ---- bad input -------------------------------------------------------------------------------------------


def test_nan_lr_is_one_line_and_writes_nothing(script, tmp_path, cifar):
    r = script("experiments/train_eval.py", "--lr", "nan", "--data", cifar, "--out", tmp_path / "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--lr nan is not a finite number" in r.stderr
    assert not (tmp_path / "run").exists() and r.stdout == ""


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arch", "NATv2_DARTS"], "--data is required"),
        (["--data", "DATA", "--lr", "inf"], "--lr inf is not a finite number"),
        (["--data", "DATA", "--lr", "-1"], "--lr must be > 0"),
        (["--data", "DATA", "--lr", "0"], "--lr must be > 0"),
        (["--data", "DATA", "--epochs", "0"], "--epochs must be >= 1"),
        (["--data", "DATA", "--epochs", "1e12"], "--epochs must be <= 100000"),
        (["--data", "DATA", "--batch-size", "0"], "--batch-size must be >= 1"),
        (["--data", "DATA", "--batch-size", "1"], "BatchNorm needs at least 2 images"),
        (["--data", "DATA", "--drop-path", "1"], "--drop-path must be <= 0.99"),
        (["--data", "DATA", "--num-gpus", "2"], "--num-gpus 2 but no CUDA devices are visible"),
        (["--data", "DATA", "--num-gpus", "65"], "--num-gpus must be <= 64"),
        (["--data", "DATA", "--ranks", "0"], "--ranks must be >= 1"),
        (["--data", "DATA", "--ranks", "3", "--num-gpus", "2"], "every rank trains on a GPU of its own"),
        (["--data", "DATA", "--ranks", "2", "--batch-size", "1"], "BatchNorm needs at least 2 images"),
        (["--data", "DATA", "--ranks", "3", "--batch-size", "2"], "at least one image of each global batch"),
        (["--data", "DATA", "--dataset", "svhn"], "invalid choice: 'svhn'"),
        (["--arch", "NoSuchNet", "--data", "DATA"], "unknown architecture 'NoSuchNet'"),
        (["--arch", "Genotype(normal=[(", "--data", "DATA"], "cannot parse DARTS text"),
        (["--arch", "|bogus~0|", "--data", "DATA"], "unknown op 'bogus'"),
        (["--arch", "DIR/", "--data", "DATA"], "cannot read genotype file"),
        (["--arch", "DEEP", "--data", "DATA"], "nested too deeply"),
        (["--arch", "DIR/missing.json", "--data", "DATA"], "does not exist"),
        (["--data", "/nonexistent"], "no CIFAR-10 data at /nonexistent"),
        (["--data", "DIR"], "no CIFAR-10 data at"),
        (["--data", "EMPTY"], "has no train/<class>/*.jpg"),
        (["--data", "/nonexistent", "--dataset", "cifar100"], "no CIFAR-100 data at /nonexistent"),
        (["--data", "DATA", "--dataset", "cifar100"], "this looks like CIFAR-10; give --dataset cifar10"),
        (["--data", "DATA", "--dataset", "imagenet"], "ImageNet"),
        (["--resume", "/nonexistent/run"], "is not a run directory; --resume takes the directory a run wrote"),
        (["--resume", "DIR"], "has no config.json; --resume takes the directory a run wrote"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(te, tmp_path, cifar, capsys, args, message):
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    paths = {
        "DATA": str(cifar),
        "DIR": str(tmp_path / "dir"),
        "EMPTY": str(tmp_path / "empty"),
        "DEEP": str(tmp_path / "deep.json"),
    }
    args = [
        paths[a.partition("/")[0]] + "".join(a.partition("/")[1:]) if a.partition("/")[0] in paths else a for a in args
    ]
    with pytest.raises(SystemExit) as e:
        te.main([*args, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_out_of_a_finished_run_is_not_overwritten(te, tmp_path, cifar, capsys):
    out = tmp_path / "run"
    te.main(_args(cifar, out, epochs=1, arch=NB201))
    before = _snapshot(out)
    for argv in (_args(cifar, out, epochs=1, arch=NB201), ["--resume", str(out)]):
        with pytest.raises(SystemExit) as e:
            te.main(argv)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "already exists and is not empty" in err and "has finished" in err
    assert _snapshot(out) == before


def test_resume_refuses_a_changed_flag(te, killed_run, capsys):
    before = _snapshot(killed_run)
    with pytest.raises(SystemExit) as e:
        te.main(["--resume", str(killed_run), "--lr", "0.1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "drop --lr (saved 0.025)" in err and err.count("\n") == 1
    assert _snapshot(killed_run) == before
    te.main(["--resume", str(killed_run), "--epochs", "2", "--num-gpus", "0"])  # the same values are fine
    assert len(_rows(killed_run)) == 2 and (killed_run / "results.json").exists()


def test_resume_of_a_corrupt_checkpoint_or_a_foreign_run(te, killed_run, tmp_path, capsys):
    (killed_run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"kind": "transformer", "config": {"rule": "nat"}}))
    (foreign / "checkpoint.pt").write_bytes(b"")
    foreign_message = "holds a transformer run, not a train_eval run"
    for run, message in ((killed_run, "cannot read checkpoint"), (foreign, foreign_message)):
        before = _snapshot(run)
        with pytest.raises(SystemExit) as e:
            te.main(["--resume", str(run)])
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and "Traceback" not in err, err
        assert _snapshot(run) == before  # nothing already written is lost, not even log.txt grows


# ---- divergence ------------------------------------------------------------------------------------------


def _nan_loss_from(monkeypatch, epoch):
    """The loss turns NaN from ``epoch`` on (two training steps per epoch: 16 images, batch 8)."""
    calls = {"n": 0}

    def make_loss(cfg):
        ce = torch.nn.CrossEntropyLoss()

        def loss(logits, y):
            calls["n"] += 1
            out = ce(logits, y)
            return out * float("nan") if calls["n"] > 2 * (epoch - 1) else out

        return loss

    monkeypatch.setattr(lib, "make_loss", make_loss)


def test_nan_in_the_first_epoch_stops_and_leaves_nothing(te, tmp_path, cifar, monkeypatch, capsys):
    _nan_loss_from(monkeypatch, 1)
    with pytest.raises(SystemExit) as e:
        te.main(_args(cifar, tmp_path / "run", arch=NB201))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "the loss became NaN/inf in epoch 1 (step 1); lower --lr" in err
    assert not (tmp_path / "run").exists()  # nothing to resume: the same --out can be used again


def test_nan_later_keeps_the_checkpoint_and_writes_no_results(te, tmp_path, cifar, monkeypatch, capsys):
    _nan_loss_from(monkeypatch, 2)
    with pytest.raises(SystemExit) as e:
        te.main(_args(cifar, tmp_path / "run", arch=NB201))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "in epoch 2" in err and "no results were written" in err
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "results.json").exists()
    assert len(_rows(tmp_path / "run")) == 1
