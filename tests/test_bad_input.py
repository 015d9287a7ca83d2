"""Bad input on every command line, in-process: exit 2, one line on stderr, no traceback, nothing written.

Each case is (script, argv). Words of argv in braces are made on demand in the case's own temporary directory
(``{T}`` is that directory; ``{run}`` a copy of a real tiny NB201 run; ``{empty.csv}`` and the like come from
MAKERS). The directory is snapshot (names, sizes, mtimes and contents) before the call and must be unchanged
after it. Ray and the run lifecycle are replaced by tripwires: a case that reaches either was not refused
before the expensive or the writing part.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPTS = {
    "train_natpp": "experiments/train_natpp.py",
    "train_nat": "experiments/train_nat.py",
    "derive": "experiments/derive.py",
    "sweep": "experiments/sweep.py",
    "search_itnas": "experiments/search_itnas.py",
    "train_eval": "experiments/train_eval.py",
    "arch_info": "analysis/arch_info.py",
    "cost_table": "analysis/cost_table.py",
    "fig5_cells": "analysis/fig5_cells.py",
    "fig7_ablations": "analysis/fig7_ablations.py",
    "nat_table3_learners": "analysis/nat_table3_learners.py",
    "quoted": "analysis/quoted.py",
    "table4_random": "analysis/table4_random.py",
    "table5_mn": "analysis/table5_mn.py",
    "table_models": "analysis/table_models.py",
    "fig8_convergence": "analysis/fig8_convergence.py",
    "nb201_supernet": "analysis/nb201_supernet.py",
}
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
LIMIT_S = 20  # a refusal takes well under a second; more is a hang
MARKER = "PWNED"  # a payload that runs would create this file in the case's directory


class Tripwire(BaseException):
    """Raised where a bad input should never get to (Ray, a run's lifecycle): not caught by except Exception."""


# ---- the real run, made once in the background while the other cases run -------------------------------------


class _RealRun:
    proc = None
    path: Path | None = None

    @classmethod
    def start(cls, base: Path):
        if cls.proc is None:
            cls.path = base / "run"
            cls.log = open(base / "run.log", "w")
            cls.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "experiments/train_natpp.py"),
                    "--iters",
                    "2",
                    "--checkpoint-every",
                    "1",
                    "--m",
                    "2",
                    "--n",
                    "1",
                    "--hidden",
                    "8",
                    "--holdout-frac",
                    "0.01",
                    "--best-of",
                    "1",
                    "--out",
                    str(cls.path),
                ],
                cwd=base,
                stdout=cls.log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RAY_ADDRESS": ""},
            )
        return cls

    @classmethod
    def wait(cls) -> Path:
        rc = cls.proc.wait(timeout=600)
        cls.log.flush()
        assert rc == 0 and (cls.path / "checkpoint.pt").is_file() and (cls.path / "policy.pt").is_file(), Path(
            cls.log.name
        ).read_text()[-3000:]
        return cls.path


@pytest.fixture(scope="module", autouse=True)
def real_run_started(request, tmp_path_factory):
    """Start the real run with the first case if any selected case names a run directory (``-k`` may select
    none); wait for it at the end rather than leave it running."""
    needs = any(
        "{run" in " ".join(map(str, getattr(item, "callspec", None) and item.callspec.params.get("argv", []) or []))
        for item in request.session.items
    )
    yield _RealRun.start(tmp_path_factory.mktemp("realrun")) if needs else None
    if _RealRun.proc is not None:
        _RealRun.proc.wait(timeout=600)
        _RealRun.log.close()


# ---- files the cases name -----------------------------------------------------------------------------------


class Payload:
    """Unpickling this creates MARKER next to it (what a malicious data file or checkpoint would do)."""

    def __init__(self, where: Path):
        self.where = str(where)

    def __reduce__(self):
        return open, (self.where, "w")


def _csv(text):
    return lambda p, c: p.write_text(text)


def _pickle(obj):
    def make(p, c):
        with open(p, "wb") as f:
            pickle.dump(obj, f)

    return make


def _torch(obj_fn):
    def make(p, c):
        import torch

        torch.save(obj_fn(p, c), p)

    return make


def _fifo(p, c):
    os.mkfifo(p)


def _dir(p, c):
    p.mkdir()
    (p / "x.txt").write_text("x")


def _unreadable(p, c):
    p.write_text("arch_str,valid-accuracy\n")
    p.chmod(0)


def _unreadable_images(p, c):
    _image_folder(p, c)
    (p / "train" / "airplane" / "0.png").chmod(0)


def _genotype(d):
    return lambda p, c: p.write_text(json.dumps(d))


def _image_folder(p, c, classes=("airplane", "automobile")):
    import numpy as np
    from PIL import Image

    for split in ("train", "test"):
        for i, cls in enumerate(classes):
            (p / split / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(p / split / cls / "0.png")


def _corrupt_cache(p, c):
    """A valid tiny image folder whose decoded-array cache (under $NATRL_CACHE) is garbage."""
    from natrl.datasets import load_cifar10

    _image_folder(p, c)
    load_cifar10(p)
    (npz,) = Path(os.environ["NATRL_CACHE"]).glob("cifar10-*.npz")
    npz.write_bytes(b"PK\x03\x04 this is not a zip archive")


def _huge_json(p, c):
    # 12 MB of whitespace-padded edges: a genotype file is a few hundred bytes
    p.write_text(
        '{"normal": [' + ", ".join(['["skip_connect", 0, 2]'] * 600_000) + '], "normal_concat": [2], '
        '"reduce": [], "reduce_concat": [2]}'
    )


def _cycle_genotype():
    return {
        "normal": [
            ["sep_conv_3x3", 0, 2],
            ["sep_conv_3x3", 3, 2],
            ["skip_connect", 0, 3],
            ["skip_connect", 2, 3],
            ["skip_connect", 0, 4],
            ["skip_connect", 1, 4],
            ["skip_connect", 0, 5],
            ["skip_connect", 1, 5],
        ],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [
            ["max_pool_3x3", 0, 2],
            ["max_pool_3x3", 1, 2],
            ["skip_connect", 0, 3],
            ["skip_connect", 2, 3],
            ["skip_connect", 0, 4],
            ["skip_connect", 1, 4],
            ["skip_connect", 0, 5],
            ["skip_connect", 1, 5],
        ],
        "reduce_concat": [2, 3, 4, 5],
    }


# --- run directories derived from the real run (c.run() copies it into the case's directory)
def _run_with(edit):
    def make(p, c):
        shutil.copytree(c.real(), p)
        edit(p)

    return make


def _set_config(fn):
    def edit(p):
        rec = json.loads((p / "config.json").read_text())
        fn(rec)
        (p / "config.json").write_text(json.dumps(rec))

    return edit


def _ckpt_meta(kind=None, drop=False):
    def edit(p):
        import torch

        state = torch.load(p / "checkpoint.pt", weights_only=True)
        if drop:
            state.pop("__natrl__")
        else:
            state["__natrl__"]["kind"] = kind
        torch.save(state, p / "checkpoint.pt")

    return edit


def _write(name, data):
    def edit(p):
        target = p / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if data is None:
            return
        if isinstance(data, bytes):
            target.write_bytes(data)
        elif callable(data):
            data(target)
        else:
            target.write_text(data)

    return edit


def _truncate(name, keep=0.5):
    def edit(p):
        b = (p / name).read_bytes()
        (p / name).write_bytes(b[: int(len(b) * keep)])

    return edit


def _torch_payload(target):
    import torch

    torch.save({"state": Payload(target.parent.parent / MARKER)}, target)


def _pickle_payload(target):
    with open(target, "wb") as f:
        pickle.dump(Payload(target.parent.parent / MARKER), f)


def _fake_sweep(p, c, config=None):
    p.mkdir()
    (p / "tune").mkdir()
    cfg = {
        "ablations": ["lam"],
        "rules": ["natpp"],
        "values": [],
        "seeds": 1,
        "iters": 1,
        "m": 2,
        "n": 1,
        "reward": "nb201",
        "table": None,
        "report_table": None,
        "data": None,
        "preset": "tiny",
        "epochs": 3,
        "supernet_steps": 0,
        "cpu_shards": 1,
        "num_gpus": 0,
        "eval_inputs": 20,
        "best_of": 10,
        "max_concurrent": 0,
        "scheduler": "fifo",
        "address": None,
        "out": str(p),
        "resume": None,
        **(config or {}),
    }
    (p / "config.json").write_text(json.dumps({"kind": "sweep", "config": cfg}))


MAKERS = {
    # tables
    "empty.csv": _csv(""),
    "header.csv": _csv("arch_str,valid-accuracy\n"),
    "nan.csv": _csv(f"arch_str,valid-accuracy\n{NB201_ARCH},nan\n"),
    "wrongcols.csv": _csv("name,accuracy\nfoo,1.0\n"),
    "badarch.csv": _csv("arch_str,valid-accuracy\n|foo~0|,90\n"),
    "binary.csv": lambda p, c: p.write_bytes(b"\xff\xfe\x00\x01" * 100),
    "text.csv.gz": _csv("not gzip at all"),
    "list.anb": _pickle([1, 2, 3]),
    "dict.anb": _pickle({"a": 1}),
    "tuplekeys.anb": _pickle({(0, 0, 0, 0, 0, 0): 5}),
    "empty.anb": _pickle({}),
    "payload.anb": lambda p, c: _pickle_payload_at(p),
    "text.anb": _csv("just text\n"),
    "table.pkl": _pickle([("a", 1)]),
    "fifo": _fifo,
    "fifo.json": _fifo,
    "fifo.csv": _fifo,
    "adir": _dir,
    "adir.json": _dir,
    "adir.csv": _dir,
    "unreadable.csv": _unreadable,
    "unreadable.json": _unreadable,
    "unreadable_images": _unreadable_images,
    "afile": _csv("some text\n"),
    "text.tar.gz": _csv("this is not a tarball\n"),
    "cache_data": _corrupt_cache,
    "images": _image_folder,
    "nonimage": lambda p, c: (p.mkdir(), (p / "train").mkdir(), (p / "test").mkdir()),
    # genotypes
    "cycle.json": _genotype(_cycle_genotype()),
    "deep.json": _csv("[" * 100_000 + "]" * 100_000),
    "deepobj.json": _csv('{"normal": ' + "[" * 50_000 + "]" * 50_000 + "}"),
    "huge.json": _huge_json,
    "list.json": _genotype([["skip_connect", 0, 2]]),
    "string.json": _genotype("DARTS_V2"),
    "malformed.json": _csv('{"normal": [["sep_conv_3x3", 0, 2],'),
    "badutf8.json": lambda p, c: p.write_bytes(b'{"normal": "\xff\xfe"}'),
    "badop.json": _genotype({**_cycle_genotype(), "normal": [["conv_99x99", 0, 2]] + _cycle_genotype()["normal"][1:]}),
    "nan.json": _csv(
        '{"normal": [["sep_conv_3x3", NaN, 2]], "normal_concat": [2], "reduce": [], "reduce_concat": [2]}'
    ),
    "bigconcat.json": _genotype({**_cycle_genotype(), "normal_concat": list(range(2, 200_000))}),
    "nb201bad.json": _genotype({"space": "nb201", "arch_str": "|nor_conv_3x3~０|"}),
    "format.json": _genotype({"format": "other/9", "space": "darts"}),
    "farnode.json": _genotype({**_cycle_genotype(), "normal": [["skip_connect", 0, 10**9]] * 8}),
    "boolnode.json": _genotype({**_cycle_genotype(), "normal": [["skip_connect", False, True]] * 8}),
    # run directories
    "run": lambda p, c: shutil.copytree(c.real(), p),
    "run_noconfig": _run_with(_write("config.json", None)),
    "run_badjson": _run_with(_write("config.json", "{not json")),
    "run_deepjson": _run_with(_write("config.json", "[" * 100_000 + "]" * 100_000)),
    "run_listjson": _run_with(_write("config.json", "[1, 2]")),
    "run_binjson": _run_with(_write("config.json", b"\xff\xfe\x00")),
    "run_configdir": _run_with(_write("config.json", lambda t: t.mkdir())),
    "run_nockpt": _run_with(_write("checkpoint.pt", None)),
    "run_ckptdir": _run_with(_write("checkpoint.pt", lambda t: t.mkdir())),
    "run_ckptfifo": _run_with(_write("checkpoint.pt", lambda t: os.mkfifo(t))),
    "run_trunc": _run_with(_truncate("checkpoint.pt")),
    "run_empty_ckpt": _run_with(_write("checkpoint.pt", b"")),
    "run_text_ckpt": _run_with(_write("checkpoint.pt", "hello\n")),
    "run_payload": _run_with(_write("checkpoint.pt", _torch_payload)),
    "run_pickle_payload": _run_with(_write("checkpoint.pt", _pickle_payload)),
    "run_list_ckpt": _run_with(_write("checkpoint.pt", lambda t: __import__("torch").save([1, 2], t))),
    "run_foreign_ckpt": _run_with(_ckpt_meta(kind="train_eval")),
    "run_nometa_ckpt": _run_with(_ckpt_meta(drop=True)),
    "run_policy_as_ckpt": _run_with(lambda p: shutil.copy(p / "policy.pt", p / "checkpoint.pt")),
    "run_edited": _run_with(_set_config(lambda r: r["config"].update(lam=0.5))),
    "run_unknown_knob": _run_with(_set_config(lambda r: r["config"].update(warp_drive=1))),
    "run_nan_knob": _run_with(_set_config(lambda r: r["config"].update(lam=float("nan")))),
    "run_neg_knob": _run_with(_set_config(lambda r: r["config"].update(iters=-5))),
    "run_str_knob": _run_with(_set_config(lambda r: r["config"].update(m="many"))),
    "run_kind_sweep": _run_with(_set_config(lambda r: r.update(kind="sweep"))),
    "run_config_list": _run_with(_set_config(lambda r: r.update(config=[1]))),
    "run_short_progress": _run_with(_write("progress.csv", "iter\n")),
    "run_nopolicy": _run_with(_write("policy.pt", None)),
    "run_policy_trunc": _run_with(_truncate("policy.pt")),
    "run_policy_payload": _run_with(_write("policy.pt", _torch_payload)),
    "run_policy_pickle": _run_with(_write("policy.pt", _pickle_payload)),
    "run_policy_list": _run_with(_write("policy.pt", lambda t: __import__("torch").save([1], t))),
    "run_policy_foreign": _run_with(_write("policy.pt", lambda t: __import__("torch").save({"a": 1}, t))),
    "run_policy_badcfg": _run_with(
        _write(
            "policy.pt",
            lambda t: __import__("torch").save(
                {"model_config": {"space": "hyper", "rule": "natpp"}, "state_dict": {}}, t
            ),
        )
    ),
    "run_policy_dir": _run_with(_write("policy.pt", lambda t: t.mkdir())),
    "sweepdir": _fake_sweep,
    "sweepdir_strvalues": lambda p, c: _fake_sweep(p, c, {"values": "0.1", "ablations": "lam"}),
    "sweepdir_nan": lambda p, c: _fake_sweep(p, c, {"seeds": float("nan")}),
    "sweepdir_notune": lambda p, c: (_fake_sweep(p, c), (p / "tune").rmdir()),
    "emptydir": lambda p, c: p.mkdir(),
    "fulldir": _dir,
    "outfile": _csv("precious\n"),
    "tables_full": lambda p, c: (
        p.mkdir(),
        (p / "cost_table.md").write_text("precious\n"),
        (p / "cost_table.csv").write_text("precious\n"),
        (p / "fig5.png").write_text("png"),
        (p / "table5.md").write_text("precious"),
    ),
    "derived_full": lambda p, c: (p.mkdir(), (p / "derived.json").write_text("precious\n")),
    "plot.png": _csv("precious png\n"),
}


def _pickle_payload_at(p):
    with open(p, "wb") as f:
        pickle.dump(Payload(p.parent / MARKER), f)


class Ctx:
    def __init__(self, tmp: Path):
        self.tmp = tmp

    def real(self) -> Path:
        return _RealRun.wait()

    def expand(self, arg: str) -> str:
        def sub(m):
            name = m.group(1)
            if name == "T":
                return str(self.tmp)
            if name not in MAKERS:
                return m.group(0)
            path = self.tmp / name
            if not os.path.lexists(path):
                MAKERS[name](path, self)
            return str(path)

        return re.sub(r"\{([A-Za-z0-9_.]+)\}", sub, arg)


def snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = None
            if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK) and st.st_size < 20_000_000:
                digest = hashlib.sha1(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


# ---- the cases ------------------------------------------------------------------------------------------------


def C(script, *argv, skip_root=False, match=None, xfail=None, id=None):
    marks = []
    if xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=f"reported: {xfail}"))
    return pytest.param(script, list(argv), skip_root, match, marks=marks, id=id or f"{script}:{' '.join(argv)[:70]}")


NUMBERS = ["nan", "inf", "-inf", "-1", "1e30", "1.5", "１０", "abc", "", "0x10"]

CASES = []

# ---- train_natpp / train_nat -----------------------------------------------------------------------------------
T = "train_natpp"
CASES += [
    C(T, "--bogus"),
    C(T, "--bogus=1"),
    C(T, "-x"),
    C(T, "positional"),
    C(T, "--iters"),
    C(T, "--out"),
    C(T, "--rule", "foo"),
    C(T, "--space", "cube"),
    C(T, "--policy", "transformer"),
    C(T, "--baseline", "median"),
    C(T, "--reward", "oracle"),
    C(T, "--preset", "huge"),
    C(T, "--rule", "nat\nline two"),
    C(T, "--iters", "3", "--iters", "nan"),
]
CASES += [C(T, "--iters", v) for v in NUMBERS]
CASES += [C(T, "--lam", v) for v in ("nan", "inf", "-inf", "-1", "1e30", "１", "1e")]
CASES += [
    C(T, flag, v)
    for flag, v in [
        ("--lr", "0"),
        ("--lr", "nan"),
        ("--lr", "-1e-3"),
        ("--m", "0"),
        ("--m", "10000000"),
        ("--n", "0"),
        ("--hidden", "0"),
        ("--gcn-layers", "0"),
        ("--gcn-layers", "1000"),
        ("--holdout-frac", "0"),
        ("--holdout-frac", "1"),
        ("--holdout-frac", "nan"),
        ("--baseline-decay", "2"),
        ("--seed", "-1"),
        ("--seed", str(2**31)),
        ("--best-of", "0"),
        ("--checkpoint-every", "0"),
        ("--eval-every", "-5"),
        ("--num-gpus", "-1"),
        ("--cpu-shards", "0"),
        ("--epochs", "0"),
        ("--supernet-batch", "0"),
        ("--eval-inputs", "0"),
        ("--reward-images", "-1"),
        ("--corr-pairs", "-1"),
        ("--corr-every", "0"),
        ("--supernet-lr", "0"),
        ("--supernet-lr", "nan"),
        ("--warmup-epochs", "-1"),
    ]
]
CASES += [  # cross-field rules
    C(T, "--space", "darts"),
    C(T, "--space", "darts", "--reward", "nb201"),
    C(T, "--reward", "supernet"),
    C(T, "--intermediate-nodes", "5"),
    C(T, "--data", "{images}"),
    C(T, "--space", "darts", "--reward", "supernet"),
    C(T, "--space", "darts", "--reward", "supernet", "--data", "{T}/missing"),
    C(T, "--space", "darts", "--reward", "supernet", "--data", "{text.tar.gz}"),
    C(T, "--space", "darts", "--reward", "supernet", "--data", "{afile}"),
    C(T, "--space", "darts", "--reward", "supernet", "--data", "{nonimage}"),
    C(T, "--space", "darts", "--reward", "supernet", "--data", "{cache_data}", match="(delete|rebuild|remove)"),
    C(T, "--space", "nb201", "--reward", "supernet"),
    C(T, "--space", "nb201", "--reward", "supernet", "--data", "{images}", "--epochs", "3", "--warmup-epochs", "3"),
    C(T, "--space", "nb201", "--reward", "supernet", "--data", "{images}", "--table", "{nan.csv}"),
    C(T, "--space", "nb201", "--reward", "supernet", "--data", "{images}", "--report-table", "{payload.anb}"),
]
CASES += [
    C(T, "--table", t)
    for t in (
        "{T}/missing.anb",
        "{adir}",
        "/dev/null",
        "{fifo}",
        "{empty.csv}",
        "{header.csv}",
        "{nan.csv}",
        "{wrongcols.csv}",
        "{badarch.csv}",
        "{binary.csv}",
        "{text.csv.gz}",
        "{list.anb}",
        "{dict.anb}",
        "{tuplekeys.anb}",
        "{empty.anb}",
        "{payload.anb}",
        "{text.anb}",
        "{table.pkl}",
        "{adir.csv}",
        "{fifo.csv}",
    )
]
CASES += [
    C(T, "--table", "{unreadable.csv}", skip_root=True),
    C(T, "--tag", "x" * 5000),
    C(T, "--space", "darts", "--reward", "supernet", "--data", "{unreadable_images}", skip_root=True),
]
CASES += [
    C(T, "--report-table", t)
    for t in ("{T}/missing.csv", "{adir}", "{empty.csv}", "{nan.csv}", "{wrongcols.csv}", "{list.anb}", "{payload.anb}")
]
CASES += [  # outputs
    C(T, "--out", "{fulldir}"),
    C(T, "--out", "{outfile}"),
    C(T, "--out", "{T}/" + "x" * 5000),
    C(T, "--out", "{T}/a\x00b"),
    C(T, "--out", "{afile}/sub"),
]
CASES += [
    C(T, "--resume", r)
    for r in (
        "{T}/nowhere",
        "{afile}",
        "{emptydir}",
        "{fulldir}",
        "{run_noconfig}",
        "{run_badjson}",
        "{run_deepjson}",
        "{run_listjson}",
        "{run_binjson}",
        "{run_configdir}",
        "{sweepdir}",
        "{run_kind_sweep}",
        "{run_config_list}",
        "{run_nockpt}",
        "{run_ckptdir}",
        "{run_ckptfifo}",
        "{run_trunc}",
        "{run_empty_ckpt}",
        "{run_text_ckpt}",
        "{run_payload}",
        "{run_pickle_payload}",
        "{run_list_ckpt}",
        "{run_foreign_ckpt}",
        "{run_nometa_ckpt}",
        "{run_policy_as_ckpt}",
        "{run_edited}",
        "{run_unknown_knob}",
        "{run_nan_knob}",
        "{run_neg_knob}",
        "{run_str_knob}",
        "{run_short_progress}",
    )
]
CASES += [
    C(T, "--resume", "{run}", *flags)
    for flags in (
        ["--lam", "0.5"],
        ["--iters", "7"],
        ["--policy", "lstm"],
        ["--seed", "3"],
        ["--rule", "nat"],
        ["--lam", "nan"],
    )
]

T = "train_nat"
CASES += [
    C(T, "--bogus"),
    C(T, "--iters", "nan"),
    C(T, "--iters", "１"),
    C(T, "--lam", "-1"),
    C(T, "--rule", "natx"),
    C(T, "--space", "darts"),
    C(T, "--table", "{list.anb}"),
    C(T, "--table", "{nan.csv}"),
    C(T, "--out", "{fulldir}"),
    C(T, "--resume", "{run_trunc}"),
    C(T, "--resume", "{sweepdir}"),
    C(T, "--resume", "{run}", "--m", "4"),
    C(T, "--resume", "{run_payload}"),
]

# ---- derive --------------------------------------------------------------------------------------------------
T = "derive"
CASES += [
    C(T),
    C(T, "{run}"),
    C(T, "--bogus"),
    C(T, "{run}", NB201_ARCH, "--mode", "greedy"),
    C(T, "{run}", NB201_ARCH, "--samples"),
    C(T, "{run}", NB201_ARCH, "--seed", "-1"),
]
CASES += [C(T, "{run}", NB201_ARCH, "--samples", v) for v in ("0", "nan", "1e9", str(10**9), "1.5", "１０", "-3")]
CASES += [
    C(T, r, NB201_ARCH)
    for r in (
        "{T}/nowhere",
        "{afile}",
        "{emptydir}",
        "{run_nopolicy}",
        "{run_policy_trunc}",
        "{run_policy_payload}",
        "{run_policy_pickle}",
        "{run_policy_list}",
        "{run_policy_foreign}",
        "{run_policy_badcfg}",
        "{run_policy_dir}",
        "{fifo}",
    )
]
CASES += [
    C(T, "{run}", cell)
    for cell in (
        "NO_SUCH_NET",
        "|nor_conv_9x9~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~０|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~0|",
        "|nor_conv_3x3~3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "||",
        "Genotype(normal=[",
        "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(2, 10**9))",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 1000000000), "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 3, 0), "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
        "Genotype(" + "[" * 5000 + "]" * 5000 + ")",
        "Genotype(normal=__import__('os').system('touch PWNED'))",
        "DARTS_V2",
        "{cycle.json}",
        "{deep.json}",
        "{deepobj.json}",
        "{huge.json}",
        "{list.json}",
        "{string.json}",
        "{malformed.json}",
        "{badutf8.json}",
        "{badop.json}",
        "{nan.json}",
        "{bigconcat.json}",
        "{nb201bad.json}",
        "{format.json}",
        "{farnode.json}",
        "{boolnode.json}",
        "{T}/missing.json",
        "{adir.json}",
        "{fifo.json}",
        "",
        "   ",
        "x" * 5000,
        "a\x00b",
        "{T}/" + "y" * 5000 + ".json",
    )
]
CASES += [
    C(T, "{run}", NB201_ARCH, "--table", t)
    for t in ("{T}/missing.anb", "{adir}", "{empty.csv}", "{list.anb}", "{payload.anb}", "/dev/null", "{nan.csv}")
]
CASES += [C(T, "{run}", "{unreadable.json}", skip_root=True)]
CASES += [  # selection / report measurements (issue 12): ranges, and each flag kept to its space
    C(T, "{run}", NB201_ARCH, flag, v)
    for flag in ("--select-batches", "--report-batches")
    for v in ("0", "-1", "nan", "1e9", "1.5", "１０")
]
CASES += [
    C(T, "{run}", NB201_ARCH, "--select-batches", "2", match="applies to darts runs"),
    C(T, "{run}", NB201_ARCH, "--report-batches", "4", match="applies to darts runs"),
]
CASES += [
    C(T, "{run}", NB201_ARCH, "--report-table", t)
    for t in ("{T}/missing.csv", "{adir}", "{empty.csv}", "{payload.anb}", "/dev/null", "{nan.csv}")
]
CASES += [C(T, "{run}", *[NB201_ARCH] * 10_001, id="derive:10001 cells")]
CASES += [  # outputs: nothing overwritten unasked
    C(T, "{run}", NB201_ARCH, "--out", "{run}/results.json"),
    C(T, "{run}", NB201_ARCH, "--out", "{run}/config.json"),
    C(T, "{run}", NB201_ARCH, "--out", "{T}/missing/parent/out.json"),
    C(T, "{run}", NB201_ARCH, "--out", "{outfile}"),
    C(T, "{run}", NB201_ARCH, "--out", "{adir.json}"),
    C(T, "{run}", NB201_ARCH, "--out", "{derived_full}"),
]

# ---- sweep ---------------------------------------------------------------------------------------------------
T = "sweep"
CASES += [
    C(T, "--bogus"),
    C(T, "--seeds"),
    C(T, "--ablations", "depth"),
    C(T, "--rules", "natx"),
    C(T, "--scheduler", "pbt"),
    C(T, "--reward", "supernet"),
    C(T, "--reward", "nb2011"),
]
CASES += [C(T, "--seeds", v) for v in ("0", str(10**6), "nan", "1.5", "１")]
CASES += [
    C(T, flag, v)
    for flag, v in [
        ("--iters", "0"),
        ("--iters", "inf"),
        ("--m", "-1"),
        ("--n", "0"),
        ("--max-concurrent", "-1"),
        ("--best-of", "1e30"),
    ]
]
CASES += [
    C(T, "--ablations", "lam", "--values", *vals) for vals in (["0.1", "abc"], ["nan"], ["-1"], ["inf"], ["1e400"])
]
CASES += [
    C(
        T,
        "--ablations",
        "lam",
        "--values",
        "0.1",
        "１",
    )
]
CASES += [
    C(T, "--ablations", "lam", "gcn_layers", "--values", "0.1"),
    C(T, "--values", "0.1"),
    C(T, "--ablations", "gcn_layers", "--values", "1.5"),
    C(T, "--ablations", "policy", "--values", "mlp"),
    C(T, "--ablations", "lam", "--values", *["0.1"] * 10_000, id="sweep:10000 values"),
]
CASES += [
    C(T, "--table", t) for t in ("{T}/missing.anb", "{adir}", "{empty.csv}", "{list.anb}", "{payload.anb}", "{fifo}")
]
CASES += [
    C(T, "--report-table", "{nan.csv}"),
    C(T, "--report-table", "{wrongcols.csv}"),
    C(T, "--reward", "supernet", "--data", "{T}/nothing"),
    C(T, "--reward", "supernet", "--data", "{text.tar.gz}"),
    C(T, "--reward", "supernet", "--data", "{cache_data}", match="(delete|rebuild|remove)"),
    C(T, "--out", "{fulldir}"),
    C(T, "--out", "{outfile}"),
    C(T, "--out", "{afile}/sub"),
    C(T, "--resume", "{T}/nowhere"),
    C(T, "--resume", "{afile}"),
    C(T, "--resume", "{run}"),
    C(T, "--resume", "{sweepdir_strvalues}"),
    C(T, "--resume", "{sweepdir_nan}"),
    C(T, "--resume", "{sweepdir_notune}"),
    C(T, "--resume", "{emptydir}"),
    C(T, "--resume", "{sweepdir}", "--seeds", "5"),
    C(T, "--resume", "{sweepdir}", "--ablations", "m"),
]

# ---- search_itnas ---------------------------------------------------------------------------------------------
T = "search_itnas"
CASES += [
    C(T),
    C(T, "--bogus"),
    C(T, "--data"),
    C(T, "--data", "{T}/missing"),
    C(T, "--data", "{text.tar.gz}"),
    C(T, "--data", "{afile}"),
    C(T, "--data", "{nonimage}"),
    C(T, "--data", "{cache_data}", match="(delete|rebuild|remove)"),
    C(T, "--data", "{images}", "--variant", "enas"),
    C(T, "--data", "{images}", "--variants", "itnas", "itnas"),
    C(T, "--data", "{images}", "--space", "darts", "--table", "{nan.csv}"),
    C(T, "--data", "{images}", "--space", "nb201", "--table", "{list.anb}"),
    C(T, "--data", "{images}", "--space", "nb201", "--report-table", "{empty.csv}"),
    C(T, "--data", "{images}", "--space", "nb201", "--table", "{T}/missing.anb"),
    C(T, "--data", "{images}", "--out", "{afile}/sub"),
    C(T, "--data", "{images}", "--num-gpus", "2"),
    C(T, "--data", "{images}", "--out", "{fulldir}"),
    C(T, "--data", "{images}", "--out", "{outfile}"),
    C(T, "--resume", "{T}/nowhere"),
    C(T, "--resume", "{run}"),
    C(T, "--resume", "{sweepdir}"),
    C(T, "--resume", "{afile}"),
    C(T, "--resume", "{run_trunc}"),
    C(T, "--resume", "{run_noconfig}"),
]
CASES += [
    C(T, "--data", "{images}", flag, v)
    for flag, v in [
        ("--channels", "0"),
        ("--epochs", "nan"),
        ("--layers", "1e30"),
        ("--batch-size", "1.5"),
        ("--seed", "-1"),
        ("--steps-per-epoch", "-1"),
        ("--seeds", "０"),
    ]
]

# ---- train_eval ----------------------------------------------------------------------------------------------
T = "train_eval"
CASES += [
    C(T),
    C(T, "--bogus"),
    C(T, "--arch"),
    C(T, "--data", "{T}/missing"),
    C(T, "--data", "{text.tar.gz}"),
    C(T, "--data", "{cache_data}", match="(delete|rebuild|remove)"),
    C(T, "--data", "{images}", "--dataset", "svhn"),
    C(T, "--data", "{images}", "--num-gpus", "3"),
    C(T, "--data", "{images}", "--ranks", "0"),
    C(T, "--data", "{images}", "--ranks", "3", "--num-gpus", "2"),
    C(T, "--data", "{images}", "--ranks", "3", "--batch-size", "2"),
    C(T, "--data", "{images}", "--out", "{fulldir}"),
    C(T, "--data", "{images}", "--out", "{outfile}"),
    C(T, "--resume", "{T}/nowhere"),
    C(T, "--resume", "{run}"),
    C(T, "--resume", "{afile}"),
]
CASES += [
    C(T, "--data", "{images}", "--arch", a)
    for a in (
        "NO_SUCH_NET",
        "|nor_conv_3x3~０|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "Genotype(normal=[",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 10**9), "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
        "{cycle.json}",
        "{deep.json}",
        "{list.json}",
        "{huge.json}",
        "{adir.json}",
        "{T}/missing.json",
    )
]
CASES += [
    C(T, "--data", "{images}", flag, v)
    for flag, v in [
        ("--epochs", "0"),
        ("--lr", "nan"),
        ("--lr", "0"),
        ("--batch-size", "1"),
        ("--drop-path", "1"),
        ("--weight-decay", "-1"),
        ("--channels", "１６"),
        ("--grad-clip", "inf"),
        ("--layers", "1.5"),
    ]
]

# ---- analysis ------------------------------------------------------------------------------------------------
T = "arch_info"
CASES += [
    C(T),
    C(T, "--bogus"),
    C(T, "--dataset", "mnist"),
    C(T, "--transitions", "foo"),
    C(T, "DARTS_V2", "--plot", "{plot.png}"),
    C(T, "DARTS_V2", "--plot", "{T}/x.bmp"),
    C(T, "DARTS_V2", "--plot", "{T}/missing/x.png"),
    C(T, "DARTS_V2", "--plot", "{adir}"),
]
CASES += [
    C(T, a)
    for a in (
        "NO_SUCH_NET",
        "|nor_conv_9x9~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~０|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "Genotype(normal=[",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 10**9), "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
        "{cycle.json}",
        "{deep.json}",
        "{list.json}",
        "{huge.json}",
        "{malformed.json}",
        "{adir.json}",
        "{fifo.json}",
        "{bigconcat.json}",
        "{T}/missing.json",
    )
]

T = "cost_table"
CASES += [C(T, "--bogus"), C(T, "--out", "{outfile}"), C(T, "--out", "{tables_full}"), C(T, "--out")]
T = "quoted"
CASES += [C(T, "--table", "2"), C(T, "--table", "x"), C(T, "--table", "nan"), C(T, "--bogus")]
T = "fig5_cells"
CASES += [
    C(T, "--bogus"),
    C(T, "--rows", "NO_SUCH_NET"),
    C(T, "--rows", "DARTS_V2 {cycle.json}"),
    C(T, "--rows", " "),
    C(T, "--nb201", "{run}"),
    C(T, "--nb201", "{T}/a", "{T}/b"),
    C(T, "--inputs", "0"),
    C(T, "--inputs", "nan"),
    C(T, "--out", "{outfile}"),
    C(T, "--out", "{tables_full}"),
    C(T, "--rows", "DARTS_V2", "--nb201", "{run}", "{run}"),
]
for T in ("fig7_ablations", "table5_mn", "nat_table3_learners", "table4_random"):
    CASES += [
        C(T),
        C(T, "--bogus"),
        C(T, "{T}/nowhere"),
        C(T, "{afile}"),
        C(T, "{emptydir}"),
        C(T, "{sweepdir}", "--out", "{outfile}"),
    ]
T = "table4_random"
CASES += [
    C(T, "{emptydir}", "--inputs", "0"),
    C(T, "{emptydir}", "--seed", "-1"),
    C(T, "{emptydir}", "--inputs", "nan"),
]
T = "fig8_convergence"
CASES += [
    C(T),
    C(T, "--bogus"),
    C(T, "{T}/nowhere"),
    C(T, "{afile}"),
    C(T, "{emptydir}"),
    C(T, "{run}"),  # a run without convergence.csv
    C(T, "{run}", "--out", "{outfile}"),
]
T = "nb201_supernet"
CASES += [
    C(T),
    C(T, "--bogus"),
    C(T, "{T}/nowhere"),
    C(T, "{afile}"),
    C(T, "{emptydir}"),
    C(T, "{run}"),  # a tabular run: no correlation curve, no supernet rows
    C(T, "{run}", "--out", "{outfile}"),
]
T = "table_models"
CASES += [
    C(T),
    C(T, "{emptydir}"),
    C(T, "{emptydir}", "--table", "2"),
    C(T, "{T}/nowhere", "--table", "1"),
    C(T, "{afile}", "--table", "3"),
    C(T, "--bogus"),
]


# ---- the runner ------------------------------------------------------------------------------------------------

_MODULES: dict = {}


def load(script: str):
    if script not in _MODULES:
        path = ROOT / SCRIPTS[script]
        name = f"_bad_input_{script}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        _MODULES[script] = mod
    return _MODULES[script]


@pytest.fixture
def tripwires(monkeypatch):
    import ray

    import natrl.cluster
    from natrl.rundir import RunDir

    def ray_init(*a, **k):
        raise Tripwire("reached ray.init: the bad input was not refused before Ray")

    def enter(self):
        raise Tripwire("reached the run's lifecycle: the bad input was not refused before the run")

    monkeypatch.setattr(ray, "init", ray_init)
    monkeypatch.setattr(natrl.cluster, "start_ray", ray_init)
    monkeypatch.setattr(RunDir, "__enter__", enter)


@pytest.mark.parametrize("script,argv,skip_root,match", CASES)
def test_bad_input(script, argv, skip_root, match, tmp_path, capsys, monkeypatch, tripwires):
    case = tmp_path / "case"
    case.mkdir()
    monkeypatch.chdir(case)  # outputs with default paths (runs/, sweeps/, tables/) would land here
    monkeypatch.setenv("NATRL_CACHE", str(case / "cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ctx = Ctx(case)
    argv = [ctx.expand(a) for a in argv]
    unreadable = [a for a in argv if "unreadable" in a]
    if skip_root and unreadable and os.access(next(Path(unreadable[0]).rglob("0.png"), unreadable[0]), os.R_OK):
        pytest.skip("running as root: a chmod 000 file is still readable")
    mod = load(script)
    before = snapshot(case)
    capsys.readouterr()
    started = time.time()

    def hang(signum, frame):
        raise Tripwire(f"still running after {LIMIT_S}s: the bad input hangs")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(LIMIT_S)
    try:
        with pytest.raises(SystemExit) as exc:
            mod.main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.time() - started
    err = capsys.readouterr().err
    after = snapshot(case)
    assert "Traceback" not in err, err[-3000:]
    assert exc.value.code == 2, (exc.value.code, err[-2000:])
    lines = err.strip().splitlines()
    if os.environ.get("BAD_INPUT_DUMP"):  # review the messages: BAD_INPUT_DUMP=FILE pytest tests/test_bad_input.py
        with open(os.environ["BAD_INPUT_DUMP"], "a") as f:
            f.write(f"{script} {' '.join(argv)[:150]!r}\n    {err.strip()[:600]}\n")
    assert len(lines) == 1, err[-2000:]
    assert not (case / MARKER).exists() and not (case.parent / MARKER).exists(), "a payload ran"
    assert after == before, {
        k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)
    }
    if match:
        assert re.search(match, lines[0]), lines[0]
    assert elapsed < LIMIT_S, f"refusing took {elapsed:.1f}s"


def test_enough_cases():
    scripts = {p.values[0] for p in CASES}
    assert len(CASES) >= 150 and scripts == set(SCRIPTS), (len(CASES), set(SCRIPTS) - scripts)
