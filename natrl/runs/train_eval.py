"""Train one architecture from scratch with the papers' evaluation settings: the ``train_eval`` run kind.

Every input (the architecture, the data and its classes, the device, the checkpoint of a ``--resume``) is read
and checked before the run directory is created (:func:`prepare`, :func:`open_resume`); a bad one is one
:class:`~natrl.errors.NatrlError` line and nothing is written. The run directory then gets config.json,
progress.csv (one row per epoch), log.txt, checkpoint.pt (after every epoch; ``--resume`` continues from it
exactly) and results.json (params, MAdds, final test accuracy, model / method labels for ``analysis/``).
A loss that becomes NaN or infinite stops the run with an error; no results are written from it.

``--ranks N`` trains data-parallel in N processes on this machine (:mod:`natrl.ddp`: DDP, NCCL on GPUs, gloo on
CPU) with the one-process recipe: the same global batches, LR and steps, BatchNorm on global-batch statistics.
Rank 0 writes the run directory; the checkpoint holds every rank's RNG state, so a resume restores every rank.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from natrl import ddp
from natrl.config import RunConfig, check_config, knob
from natrl.errors import NatrlError
from natrl.rundir import PROGRESS, RunDir, check_new_run_dir, resume_config, seed_everything

KIND = "train_eval"

CIFAR_PAPER = {
    "layers": 20,
    "channels": 36,
    "epochs": 600,
    "batch_size": 96,
    "lr": 0.025,
    "weight_decay": 3e-4,
    "drop_path": 0.2,
    "auxiliary_weight": 0.4,
    "cutout": 16,
    "label_smoothing": 0.0,
    "train_subset": 0,
}

PRESETS = {  # (dataset family, preset) -> the values of the knobs the user left unset
    ("cifar", "paper"): CIFAR_PAPER,
    ("cifar", "tiny"): {  # the paper's recipe, small enough for CPU minutes
        **CIFAR_PAPER,
        "layers": 5,
        "channels": 8,
        "epochs": 2,
        "batch_size": 64,
        "train_subset": 2000,
    },
    ("imagenet", "paper"): {
        "layers": 14,
        "channels": 48,
        "epochs": 250,
        "batch_size": 128,
        "lr": 0.1,
        "weight_decay": 3e-5,
        "drop_path": 0.0,
        "auxiliary_weight": 0.4,
        "cutout": 0,
        "label_smoothing": 0.1,
        "train_subset": 0,
    },
    ("imagenet", "tiny"): {
        "layers": 5,
        "channels": 8,
        "epochs": 1,
        "batch_size": 16,
        "lr": 0.1,
        "weight_decay": 3e-5,
        "drop_path": 0.0,
        "auxiliary_weight": 0.4,
        "cutout": 0,
        "label_smoothing": 0.1,
        "train_subset": 256,
    },
}


# The papers' rule (NAT Section 4.1, NAT++ Section 5.1): cutout for NAS-based architectures only. Hand-crafted
# networks take the usual recipe of their CIFAR implementations (the papers defer to "the original papers" and
# are silent on the numbers: 200 epochs, batch 128, SGD lr 0.1 cosine, wd 5e-4, nothing else); the random
# architectures of NAT++ Table 4 the DARTS recipe with batch 128 (Section 6.1) and no cutout.
# (recipe, dataset family, preset) -> values replacing the preset's
RECIPES: dict[tuple[str, str, str], dict[str, Any]] = {
    ("handcrafted", "cifar", "paper"): {
        "epochs": 200,
        "batch_size": 128,
        "lr": 0.1,
        "weight_decay": 5e-4,
        "drop_path": 0.0,
        "auxiliary_weight": 0.0,
        "cutout": 0,
    },
    ("handcrafted", "cifar", "tiny"): {
        "lr": 0.05,
        "weight_decay": 5e-4,
        "drop_path": 0.0,
        "auxiliary_weight": 0.0,
        "cutout": 0,
    },
    ("handcrafted", "imagenet", "paper"): {"drop_path": 0.0, "auxiliary_weight": 0.0},
    ("handcrafted", "imagenet", "tiny"): {"drop_path": 0.0, "auxiliary_weight": 0.0},
    ("random", "cifar", "paper"): {"batch_size": 128, "cutout": 0},
    ("random", "cifar", "tiny"): {"cutout": 0},
}
RANDOM_CELLS = ("R1", "R2", "R3", "R4", "R5")  # the NAT paper's random cells (registry), and NAT_R1 ... of them


def _preset(name: str) -> str:
    """'preset paper 20 (ImageNet 14), tiny 5 (ImageNet 5)': the preset values of one knob, for --help."""
    v = {key: p[name] for key, p in PRESETS.items()}
    return (
        f"unset: preset paper {v['cifar', 'paper']:g} (ImageNet {v['imagenet', 'paper']:g}), "
        f"tiny {v['cifar', 'tiny']:g} (ImageNet {v['imagenet', 'tiny']:g})"
    )


@dataclass
class EvalConfig(RunConfig):
    arch: str = knob(
        "NATv2_DARTS",
        "architecture: a registry name (NAT_DARTS), a genotype JSON file (what "
        "derive.py and search_itnas.py write), Genotype(...) text or a NAS-Bench-201 arch_str",
        metavar="ARCH",
    )
    dataset: Literal["cifar10", "cifar100", "imagenet"] = knob(
        "cifar10", "evaluation setting (ImageNet folders need torchvision)"
    )
    data: str | None = knob(
        None,
        "the data set: CIFAR as cifar-10-batches-py / cifar-100-python, an image folder "
        "train|test/<class>/ or its .tar.gz; ImageNet as DIR/{train,val}/<class>/",
        metavar="PATH",
    )
    preset: Literal["paper", "tiny"] = knob(
        "paper",
        "paper: the papers' evaluation recipe (DARTS' 600-epoch CIFAR training, 250 epochs on ImageNet); "
        "tiny: a small network on 2,000 images for a CPU check in minutes. Knobs below left unset take it",
    )
    layers: int | None = knob(None, f"cells in the network; {_preset('layers')}", ge=1, le=100)
    channels: int | None = knob(None, f"initial channels C; {_preset('channels')}", ge=1, le=1024)
    epochs: int | None = knob(
        None, f"training epochs (cosine schedule over them); {_preset('epochs')}", ge=1, le=100_000
    )
    batch_size: int | None = knob(None, f"batch size; {_preset('batch_size')}", ge=1, le=65536)
    lr: float | None = knob(None, f"SGD learning rate (momentum 0.9); {_preset('lr')}", gt=0, le=10)
    weight_decay: float | None = knob(None, f"SGD weight decay; {_preset('weight_decay')}", ge=0, le=1)
    drop_path: float | None = knob(
        None,
        "drop-path probability, ramped linearly over the epochs as in DARTS; " + _preset("drop_path"),
        ge=0,
        le=0.99,
    )
    auxiliary_weight: float | None = knob(
        None,
        "weight of the auxiliary head's loss (0 = no auxiliary head); " + _preset("auxiliary_weight"),
        ge=0,
        le=100,
    )
    cutout: int | None = knob(None, f"cutout size in pixels (0 = off, CIFAR only); {_preset('cutout')}", ge=0, le=64)
    label_smoothing: float | None = knob(
        None, f"label smoothing of the loss; {_preset('label_smoothing')}", ge=0, le=0.99
    )
    train_subset: int | None = knob(
        None, "train on a fixed random N of the training images (0 = all); " + _preset("train_subset"), ge=0
    )
    network: str | None = knob(
        None,
        "hand-crafted network whose blocks take the cells (VGG16, ResNet20, ResNet56, "
        "ShuffleNet, MobileNetV2; ImageNet: VGG16, ResNet18, ResNet50, ShuffleNet, "
        "MobileNetV2); unset: the one --arch names (ResNet20, NATv2_ResNet20.json), else "
        "the papers' cell network (--layers, --channels)",
        metavar="NAME",
    )
    recipe: Literal["auto", "nas", "handcrafted", "random"] = knob(
        "auto",
        "training recipe: nas (cutout 16), handcrafted (no cutout, batch 128, lr 0.1, 200 epochs), random "
        "(NAT++ Table 4: batch 128, no cutout); auto: handcrafted for a hand-crafted network, random for R1..R5, "
        "else nas",
    )
    grad_clip: float = knob(5.0, "gradient-norm clip", gt=0)
    model: str | None = knob(None, "model label for the analysis tables (default: from the name, e.g. DARTS)")
    method: str | None = knob(
        None, "method label for the analysis tables: /, NAT, NAT++, ITNAS ... (default: from the name)"
    )
    seed: int = knob(0, "seeds torch, numpy and the data order", ge=0, le=2**31 - 1)
    num_gpus: int = knob(0, "0 = CPU; N = N GPUs of this machine, one per rank (--ranks; unset, it is N)", ge=0, le=64)
    ranks: int | None = knob(
        None,
        "data-parallel training processes on this machine (DistributedDataParallel: NCCL on GPUs, gloo on "
        "CPU), each training its slice of every global batch: the batch size, LR and steps of one process, "
        "BatchNorm on the global batch's statistics; unset: --num-gpus if above 1, else 1",
        ge=1,
        le=64,
    )
    workers: int = knob(4, "ImageNet data-loader worker processes (per rank)", ge=0, le=256)
    out: str | None = knob(None, "run directory (default runs/eval-<arch>-<dataset>-s<seed>-<time>)", metavar="DIR")
    resume: str | None = knob(
        None, "run directory of a killed run: continue it exactly from its last checkpoint", metavar="DIR"
    )

    # where the run computes, not what: a GPU run may be resumed on CPU and the other way round
    RESUME_FREE = (*RunConfig.RESUME_FREE, "num_gpus", "workers")

    def network_and_recipe(self) -> tuple[str | None, str]:
        """The hand-crafted network this config trains (None: the cell network) and its recipe (auto resolved).
        An architecture that cannot be read counts as NAS-based here; prepare() reports it in one line."""
        try:
            name = load_arch(self.arch)[0]
        except NatrlError:
            return self.network, "nas" if self.recipe == "auto" else self.recipe
        network = self.network or network_of(name)
        return network, recipe_of(name, network) if self.recipe == "auto" else self.recipe

    def preset_values(self) -> dict[str, Any]:
        family = "imagenet" if self.dataset == "imagenet" else "cifar"
        network, recipe = self.network_and_recipe()
        values: dict[str, Any] = dict(PRESETS[(family, self.preset)])
        values.update(RECIPES.get((recipe, family, self.preset), {}))
        if network:  # depth and widths are the network's own
            values.update(layers=None, channels=None)
        return {**values, "network": network, "recipe": recipe, "ranks": max(self.num_gpus, 1)}

    def validate(self) -> None:
        if self.resume:
            return  # the saved config was checked when the run started
        if not self.data:
            raise NatrlError(
                "--data is required: the data set's folder or tarball (e.g. --data CIFAR10_DIR); "
                "see --help for the layouts"
            )
        if self.batch_size == 1:
            raise NatrlError("--batch-size 1: BatchNorm needs at least 2 images per batch; give 2 or more")
        if self.network and (self.layers is not None or self.channels is not None):
            raise NatrlError(
                f"--layers / --channels do not apply to the hand-crafted network {self.network}: its "
                "depth and widths are the original's; leave them unset"
            )


# ---- inputs ----------------------------------------------------------------------------------------------


def model_and_method(name: str, network: str | None = None) -> tuple[str, str]:
    """Table labels from a registry-style name: NATv2_DARTS -> (DARTS, NAT++), NAT_ENAS -> (ENAS, NAT); in a
    hand-crafted network the model is the network (NATv2_ResNet20.json in ResNet20 -> (ResNet20, NAT++))."""
    stem = Path(name).stem if name.endswith(".json") else name
    method = "/"
    for prefix, m in (("NATv2_", "NAT++"), ("NATPP_", "NAT++"), ("NAT_", "NAT")):
        if stem.startswith(prefix):
            stem, method = stem[len(prefix) :], m
    if network:
        return network, method
    # the hand-crafted cells in the DARTS cell network are not Table 1's networks: labelled as cells
    aliases = {
        "DARTS_V2": "DARTS",
        "PC_DARTS_cifar": "PC-DARTS",
        "VGG": "VGG cell",
        "Mobilenetv2": "MobileNetV2 cell",
        "MobileNetv2": "MobileNetV2 cell",
    }
    return aliases.get(stem, stem), method


def network_of(arch_name: str) -> str | None:
    """The hand-crafted network an architecture's name stands for: ResNet20, NAT_ResNet20(.json) -> ResNet20."""
    from natrl import handcrafted

    stem = Path(arch_name).stem if arch_name.endswith(".json") else arch_name
    for prefix in ("NATv2_", "NATPP_", "NAT_"):
        stem = stem[len(prefix) :] if stem.startswith(prefix) else stem
    return stem if handcrafted.is_network(stem) else None


Recipe = Literal["handcrafted", "random", "nas"]


def recipe_of(arch_name: str, network: str | None) -> Recipe:
    """The papers' recipe family of an architecture: handcrafted, random (R1..R5 and their NAT cells) or nas."""
    base = model_and_method(arch_name)[0]
    return "handcrafted" if network else "random" if base in RANDOM_CELLS else "nas"


def load_arch(spec: str):
    """(short name for the run, genotype) of ``--arch`` (anything ``zoo.resolve`` reads)."""
    from natrl.zoo import resolve

    try:
        name, genotype = resolve(spec)
    except RecursionError:  # json.loads of a file nested thousands deep
        raise NatrlError(
            f"--arch {spec}: the JSON is nested too deeply to be a genotype; give a genotype file "
            "as derive.py writes it"
        ) from None
    return ("nb201" if spec.strip().startswith("|") else "custom" if name == "Genotype(...)" else name), genotype


class CifarData:
    """Train/test batches of CIFAR-10/100 on the device (augmentation on the device, as for the supernet)."""

    def __init__(self, cfg: EvalConfig, device, rank: int = 0, world: int = 1):
        import numpy as np

        from natrl.datasets import DeviceBatches, load_cifar10

        d = load_cifar10(cfg.data, dataset=cfg.dataset)
        keep = np.arange(len(d["train_y"]))
        if cfg.train_subset:  # a fixed random subset (files are often stored class by class)
            keep = np.sort(np.random.default_rng(0).permutation(len(keep))[: cfg.train_subset])
        self.train = DeviceBatches(
            d["train_x"][keep],
            d["train_y"][keep],
            cast(int, cfg.batch_size),
            device,
            augment=True,
            cutout=cast(int, cfg.cutout),
            seed=cfg.seed,
        )
        self.test = DeviceBatches(d["test_x"], d["test_y"], 256, device)
        self.num_classes = int(max(d["train_y"].max(), d["test_y"].max())) + 1
        self.train_size, self.rank, self.world = len(keep), rank, world

    def train_batches(self):
        """This rank's slice of every global batch (every rank draws and augments the same global batches)."""
        if self.world == 1:
            yield from self.train.batches(shuffle=True)
            return
        for x, y in self.train.batches(shuffle=True):
            part = ddp.shard(len(y), self.rank, self.world)
            yield x[part], y[part]

    def test_batches(self):
        return self.test.batches(shuffle=False)

    def state_dict(self):
        return self.train.state_dict()

    def load_state_dict(self, s):
        self.train.load_state_dict(s)


def _image_folder(root: Path, transform):
    import torchvision.datasets as tvd

    try:
        return tvd.ImageFolder(root, transform)
    except (FileNotFoundError, OSError) as e:  # no class folders, or no images in them
        raise NatrlError(
            f"no ImageNet images in {root} ({str(e).splitlines()[0][:120]}); expected {root}/<class>/*.JPEG"
        ) from None


class ImageNetData:
    """ImageNet folders DIR/{train,val}/<class>/*.JPEG through torchvision (an optional dependency)."""

    def __init__(self, cfg: EvalConfig, device, rank: int = 0, world: int = 1):
        try:
            import torchvision.transforms as T
        except ImportError:
            raise NatrlError(
                "ImageNet folders need torchvision, an optional extra: pip install torchvision "
                "(a build matching your torch); CIFAR-10/100 need nothing more"
            ) from None
        import torch

        root = Path(cast(str, cfg.data))
        if not (root / "train").is_dir() or not (root / "val").is_dir():
            raise NatrlError(
                f"no ImageNet folders at {root}; expected {root}/train/<class>/*.JPEG and {root}/val/<class>/"
            )
        norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        train = _image_folder(
            root / "train",
            T.Compose(
                [
                    T.RandomResizedCrop(224),
                    T.RandomHorizontalFlip(),
                    T.ColorJitter(0.4, 0.4, 0.4, 0.2),
                    T.ToTensor(),
                    norm,
                ]
            ),
        )
        val = _image_folder(root / "val", T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm]))
        if train.classes != val.classes:
            raise NatrlError(
                f"{root}/train and {root}/val have different class folders ({len(train.classes)} vs "
                f"{len(val.classes)}); both need the same <class>/ names"
            )
        if cfg.train_subset:
            train = torch.utils.data.Subset(train, range(min(cfg.train_subset, len(train))))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        # DataLoader(shuffle=True)'s own sampler, each rank loading its slice of every global batch
        batches = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(train, generator=self.generator), cast(int, cfg.batch_size), False
        )
        self.train = torch.utils.data.DataLoader(
            train,
            batch_sampler=ddp.ShardedBatches(batches, rank, world) if world > 1 else batches,
            generator=self.generator,
            num_workers=cfg.workers,
            pin_memory=device.type == "cuda",
        )
        self.train_size = len(train)
        self.test = torch.utils.data.DataLoader(val, 128, num_workers=cfg.workers)
        self.num_classes, self.device = len(val.classes), device

    def train_batches(self):
        return ((x.to(self.device), y.to(self.device)) for x, y in self.train)

    def test_batches(self):
        return ((x.to(self.device), y.to(self.device)) for x, y in self.test)

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, s):
        self.generator.set_state(s["generator"])


def check_classes(cfg: EvalConfig, num_classes: int):
    """The data's class count fits the evaluation setting (a CIFAR-10 set under --dataset cifar100 does not)."""
    from natrl.nets.eval_net import DATASETS

    expected = DATASETS[cfg.dataset][1]
    if num_classes > expected:
        raise NatrlError(
            f"the data at {cfg.data} has {num_classes} classes, {cfg.dataset} has {expected}; "
            "check --dataset and --data"
        )
    if cfg.dataset == "cifar100" and num_classes <= 10:
        raise NatrlError(
            f"the data at {cfg.data} has {num_classes} classes, cifar100 has 100: this looks like "
            "CIFAR-10; give --dataset cifar10 or the CIFAR-100 data"
        )


# ---- the run's parts -------------------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything a run trains, built (and so checked) before its directory exists."""

    name: str
    genotype: Any
    device: Any
    data: Any
    net: Any
    cost: Any
    opt: Any
    sched: Any
    loss_fn: Any
    train_net: Any = None  # what trains: ``net`` itself, or ``net`` in DDP (rank ``rank`` of ``world``)
    rank: int = 0
    world: int = 1

    def __post_init__(self):
        self.train_net = self.net if self.train_net is None else self.train_net


def make_loss(cfg: EvalConfig):
    import torch

    return torch.nn.CrossEntropyLoss(label_smoothing=cast(float, cfg.label_smoothing))


def ranks_of(cfg: EvalConfig) -> int:
    return cfg.ranks or 1  # None: a run directory written before --ranks existed


def prepare(cfg: EvalConfig, rank: int = 0, world: int = 1, *, checking: bool = False) -> Setup:
    """Read the architecture and the data, build the network and its optimizer; NatrlError on bad input.
    ``rank`` of ``world``: a data-parallel rank (its GPU, its slices, the network in DDP). ``checking``: only
    check the inputs, on the CPU (the launcher of the ranks, which must not hold a GPU)."""
    import torch

    from natrl.costs import network_cost
    from natrl.nets.eval_net import DATASETS

    name, genotype = load_arch(cfg.arch)
    ddp.check_ranks(ranks_of(cfg), cfg.num_gpus, cast(int, cfg.batch_size))
    device = torch.device("cuda", rank) if cfg.num_gpus and not checking else torch.device("cpu")
    data = (ImageNetData if cfg.dataset == "imagenet" else CifarData)(cfg, device, rank, world)
    check_classes(cfg, data.num_classes)
    seed_everything(cfg.seed)  # every rank builds the same initial weights
    net = build_net(cfg, genotype)
    cost = network_cost(net, DATASETS[cfg.dataset][0])  # costs of the network as built (aux head excluded)
    net = net.to(device)
    train_net = ddp.wrap(net, device) if world > 1 else net
    if rank:  # drop-path masks of the other ranks' slices: streams of their own
        torch.manual_seed(cfg.seed + (rank << 32))
    opt = torch.optim.SGD(
        net.parameters(), cast(float, cfg.lr), momentum=0.9, weight_decay=cast(float, cfg.weight_decay)
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cast(int, cfg.epochs))
    return Setup(name, genotype, device, data, net, cost, opt, sched, make_loss(cfg), train_net, rank, world)


def build_net(cfg: EvalConfig, genotype):
    """The network trained: ``genotype`` in its hand-crafted network (``cfg.network``) or the papers' cell network."""
    from natrl.nets.eval_net import build_network

    if cfg.network:
        from natrl import handcrafted

        if genotype.space != "darts":
            raise NatrlError(
                f"--network {cfg.network} takes darts-space cells (normal and reduce); got a {genotype.space} cell"
            )
        return handcrafted.network(cfg.network, cfg.dataset).build(genotype)
    aux = cast(float, cfg.auxiliary_weight) > 0 and genotype.space != "nb201"
    return build_network(genotype, cfg.dataset, C=cfg.channels, layers=cfg.layers, auxiliary=aux)


def settle_config(cfg: EvalConfig, given=frozenset()) -> EvalConfig:
    """The config a run uses: the saved one of a ``--resume`` (flags beside it must agree), else ``cfg`` with
    its preset filled in where a knob is unset, checked."""
    if cfg.resume:
        saved = resume_config(EvalConfig, cfg, set(given), kind=KIND)
        return dataclasses.replace(saved, **{k: getattr(cfg, k) for k in set(given) & {"num_gpus", "workers"}})
    preset = cfg.preset_values()
    unset = {k: v for k, v in preset.items() if getattr(cfg, k) is None or (k == "recipe" and cfg.recipe == "auto")}
    cfg = check_config(dataclasses.replace(cfg, **unset))
    if cfg.network is not None:
        from natrl import handcrafted

        handcrafted.network(cfg.network, cfg.dataset)  # an unknown network, or one of another dataset: one line
    return cfg


def open_resume(cfg: EvalConfig) -> tuple[RunDir, dict]:
    """The run directory of ``--resume`` and its checkpoint, both checked; nothing is written."""
    path = Path(cast(str, cfg.resume))
    if (path / "results.json").exists():
        raise NatrlError(f"{path} has finished (results.json is there); nothing to resume, start a new run")
    run = RunDir.reopen(path, KIND)
    ckpt = cast(dict[str, Any], run.load_checkpoint())  # a reopened run is a resumed one: never None
    epoch = ckpt.get("epoch")
    if not isinstance(epoch, int) or not 1 <= epoch <= cast(int, cfg.epochs):
        raise NatrlError(f"{path}/checkpoint.pt holds no epoch of this run; start a new run")
    try:
        with open(path / PROGRESS) as f:
            rows = sum(1 for _ in f) - 1
    except (OSError, UnicodeDecodeError):
        rows = 0
    if rows < epoch:
        raise NatrlError(
            f"{path}/{PROGRESS} has {max(rows, 0)} rows but the checkpoint is of epoch {epoch}; the run "
            "directory was edited and cannot be resumed"
        )
    return run, ckpt


def restore(s: Setup, ckpt: dict, where: Path) -> int:
    """Load a checkpoint into the built run; returns the first epoch still to train."""
    import torch

    try:
        s.net.load_state_dict(ckpt["model"])
        s.opt.load_state_dict(ckpt["optimizer"])
        s.sched.load_state_dict(ckpt["scheduler"])
        s.data.load_state_dict(ckpt["data"])
        ranks = ckpt.get("rank_rng") if s.world > 1 else None  # every rank's own RNG streams
        torch.set_rng_state(ranks[s.rank] if ranks else ckpt["torch_rng"])
        cuda = ckpt.get("rank_cuda_rng") if s.world > 1 else None
        if s.device.type == "cuda" and (cuda or "cuda_rng" in ckpt):
            torch.cuda.set_rng_state(cuda[s.rank] if cuda else ckpt["cuda_rng"], s.device)
    except (KeyError, IndexError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else e.__class__.__name__
        raise NatrlError(f"{where}/checkpoint.pt does not fit this run's network ({reason}); start a new run") from None
    return ckpt["epoch"] + 1


# ---- training --------------------------------------------------------------------------------------------


def _diverged(cfg: EvalConfig, epoch: int, step: int) -> NatrlError:
    kept = f"the checkpoint of epoch {epoch - 1} is kept but would diverge again" if epoch > 1 else "nothing was kept"
    return NatrlError(
        f"the loss became NaN/inf in epoch {epoch} (step {step}); lower --lr (now {cfg.lr:g}) or "
        f"--grad-clip (now {cfg.grad_clip:g}) and start a new run; no results were written, {kept}"
    )


def _step_loss(cfg: EvalConfig, s: Setup, x, y, n: int):
    """(loss to back-propagate, the global batch's mean loss, its correct predictions) of one step on this
    rank's slice (x, y) of a global batch of ``n``. A rank's loss is scaled by its share of the batch, so DDP's
    gradient average is the gradient of the global batch's mean loss; every rank sees the same numbers."""
    logits, logits_aux = s.train_net(x)
    loss = s.loss_fn(logits, y)
    if logits_aux is not None:
        loss = loss + cfg.auxiliary_weight * s.loss_fn(logits_aux, y)
    correct = int((logits.argmax(1) == y).sum())
    if s.world == 1:
        return loss, float(loss.detach()), correct
    loss = loss * (len(y) * s.world / n)
    total, correct_total = ddp.all_sum([float(loss.detach()) * n / s.world, correct], s.device)
    return loss, total / n, int(correct_total)


def train_epoch(cfg: EvalConfig, s: Setup, epoch: int) -> dict:
    """One pass over the training batches; the loss is checked to be finite at every step (on every rank
    alike: the global batch's loss)."""
    import torch

    s.train_net.train()
    if hasattr(s.net, "drop_path_prob"):
        s.net.drop_path_prob = cast(float, cfg.drop_path) * (epoch - 1) / cast(int, cfg.epochs)  # DARTS' linear ramp
    lr = s.opt.param_groups[0]["lr"]
    seen = correct = 0
    loss_sum = 0.0
    B = cast(int, cfg.batch_size)
    for step, (x, y) in enumerate(s.data.train_batches(), start=1):
        n = min(B, s.data.train_size - (step - 1) * B)  # the global batch this rank has a slice of
        if n < max(2, s.world):
            continue  # a last batch of one image (BatchNorm cannot train on it) or of fewer images than ranks
        loss, value, right = _step_loss(cfg, s, x, y, n)
        if not math.isfinite(value):
            raise _diverged(cfg, epoch, step)
        s.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(s.net.parameters(), cfg.grad_clip)
        s.opt.step()
        seen += n
        loss_sum += value * n
        correct += right
    s.sched.step()
    if not all(bool(torch.isfinite(p).all()) for p in s.net.parameters()):
        raise _diverged(cfg, epoch, step)
    return {
        "lr": round(lr, 6),
        "train_loss": round(loss_sum / max(seen, 1), 4),
        "train_acc": round(100.0 * correct / max(seen, 1), 2),
    }


def evaluate(net, batches) -> float:
    """Top-1 accuracy (%) of ``net`` over ``batches``."""
    import torch

    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            logits, _ = net(x)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)


def checkpoint(run: RunDir | None, s: Setup, epoch: int):
    """Rank 0 writes the checkpoint (with every rank's RNG states: a collective, so every rank calls it)."""
    import torch

    if s.world > 1:
        rngs = ddp.gather(torch.get_rng_state())
        cuda_rngs = ddp.gather(torch.cuda.get_rng_state(s.device)) if s.device.type == "cuda" else None
    if run is None:
        return
    state = {
        "epoch": epoch,
        "model": s.net,
        "optimizer": s.opt,
        "scheduler": s.sched,
        "data": s.data,
        "torch_rng": torch.get_rng_state(),
    }
    if s.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(s.device)
    if s.world > 1:
        state["rank_rng"] = rngs
        if cuda_rngs is not None:
            state["rank_cuda_rng"] = cuda_rngs
    run.save_checkpoint(state)


def fit(cfg: EvalConfig, s: Setup, run: RunDir | None, first: int, stop_after: int | None = None) -> list[dict]:
    """Epochs ``first``..``cfg.epochs``: train, evaluate the test set (for the log only), a progress row and a
    checkpoint each. Returns every epoch's row (those of a resumed run's earlier epochs included). Ranks other
    than 0 (``run`` None) only train and join the checkpoint. ``stop_after``: stop as a kill would, right after
    that epoch's checkpoint (KeyboardInterrupt; what the tests use)."""
    if run is None:
        for epoch in range(first, cast(int, cfg.epochs) + 1):
            train_epoch(cfg, s, epoch)
            checkpoint(None, s, epoch)
            if epoch == stop_after:
                raise KeyboardInterrupt
        return []
    progress = run.open_progress(keep_rows=first - 1)
    started = time.time() - (progress.rows[-1]["seconds"] if progress.rows else 0.0)
    for epoch in range(first, cast(int, cfg.epochs) + 1):
        row = {"epoch": epoch, **train_epoch(cfg, s, epoch)}
        row["test_acc"] = round(evaluate(s.net, s.data.test_batches()), 2)
        row["seconds"] = round(time.time() - started, 1)
        progress.log(row)
        progress.flush()
        checkpoint(run, s, epoch)
        print(
            f"epoch {epoch:4d}/{cfg.epochs}  loss {row['train_loss']:.3f}  train {row['train_acc']:5.1f}%  "
            f"test {row['test_acc']:5.1f}%  lr {row['lr']:.4f}  {row['seconds']:7.1f}s",
            flush=True,
        )
        if epoch == stop_after:
            raise KeyboardInterrupt
    return progress.rows


def results(cfg: EvalConfig, s: Setup, run: RunDir, rows: list[dict]) -> dict:
    """results.json: what analysis/ reads (the final epoch's test accuracy: nothing is selected on it)."""
    model, method = model_and_method(s.name, cfg.network)
    layers, channels = cfg.layers, cfg.channels
    if cfg.network:  # a hand-crafted network's depth and width: its blocks, its first stage's width (table keys)
        layers, channels = len(s.net.cells), s.net.spec.stages[0].channels
    return {
        "kind": KIND,
        "arch": s.name,
        "model": cfg.model or model,
        "method": cfg.method or method,
        "dataset": cfg.dataset,
        "genotype": s.genotype.to_json(),
        "params_M": round(s.cost.params_m, 4),
        "madds_M": round(s.cost.madds_m, 2),
        "test_acc": rows[-1]["test_acc"],
        "epochs": cfg.epochs,
        "layers": layers,
        "channels": channels,
        "network": cfg.network,
        "recipe": cfg.recipe,
        "cutout": cfg.cutout,
        "batch_size": cfg.batch_size,
        "ranks": s.world,
        "seed": cfg.seed,
        "run": run.path.name,
        "train_seconds": rows[-1]["seconds"],
    }


def train(cfg: EvalConfig, given=frozenset(), *, stop_after: int | None = None) -> Path:
    """Train ``cfg.arch`` from scratch (or continue ``cfg.resume``); returns the run directory.
    ``given``: the knobs set on the command line (checked against the saved config of a resume).
    ``stop_after``: stop right after that epoch's checkpoint, as a kill would (see :func:`fit`)."""
    cfg = settle_config(cfg, given)
    run, ckpt = open_resume(cfg) if cfg.resume else (None, None)
    world = ranks_of(cfg)
    s = prepare(cfg, checking=world > 1)  # every input is read and checked here: nothing is written before
    first = restore(s, ckpt, cast(RunDir, run).path) if ckpt is not None else 1
    if world > 1:
        del s
        if cfg.out and not cfg.resume:
            check_new_run_dir(Path(cfg.out))  # rank 0 starts it; a refusal there would come after the launch
        return Path(ddp.launch(train_rank, world, cfg.num_gpus, (cfg, stop_after)))
    return run_rank0(cfg, s, run, first, stop_after)


def train_rank(rank: int, world: int, cfg: EvalConfig, stop_after: int | None) -> str | None:
    """One data-parallel rank (a process of :func:`natrl.ddp.launch`); rank 0 writes the run directory."""
    run, ckpt = open_resume(cfg) if cfg.resume else (None, None)
    s = prepare(cfg, rank, world)
    first = restore(s, ckpt, cast(RunDir, run).path) if ckpt is not None else 1
    if rank:
        fit(cfg, s, None, first, stop_after)
        return None
    return str(run_rank0(cfg, s, run, first, stop_after))


def run_rank0(cfg: EvalConfig, s: Setup, run: RunDir | None, first: int, stop_after: int | None) -> Path:
    """The run directory's side of a run: start (or continue) it, train, write the results."""
    run = run or RunDir.start(cfg, kind=KIND, name=f"eval-{s.name}-{cfg.dataset}-s{cfg.seed}")
    where = f"{s.world} ranks, " if s.world > 1 else ""
    where += ("GPU" if cfg.num_gpus else "CPU") + (f" {ddp.backend(cfg.num_gpus)}" if s.world > 1 else "")
    with run:
        if first > 1:
            print(f"resumed after epoch {first - 1}", flush=True)
        print(
            f"{s.name}: {s.cost.params_m:.3f}M params, {s.cost.madds_m:.1f}M MAdds; {cfg.epochs} epochs on "
            f"{cfg.dataset} ({where})",
            flush=True,
        )
        rows = fit(cfg, s, run, first, stop_after)
        res = results(cfg, s, run, rows)
        run.write_json("results.json", res)
        print(
            json.dumps(
                {
                    "run_dir": str(run.path),
                    "test_acc": res["test_acc"],
                    "params_M": res["params_M"],
                    "madds_M": res["madds_M"],
                }
            )
        )
    return run.path
