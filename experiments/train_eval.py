"""Train an architecture from scratch with the papers' evaluation settings and report its test accuracy and cost.

Run:
    python experiments/train_eval.py --arch NATv2_DARTS --data ../shared/data/cifar10_jpg.tar.gz --preset tiny
    python experiments/train_eval.py --arch derived/DARTS_V2.json --data DATA --num-gpus 1     # the paper setting
    python experiments/train_eval.py --arch NAT_DARTS --dataset cifar100 --data CIFAR100_DIR
    python experiments/train_eval.py --arch NATv2_DARTS --dataset imagenet --data IMAGENET_DIR  # needs torchvision
    python experiments/train_eval.py --resume runs/RUN_DIR                # continue a killed run exactly

``--arch`` takes a registry name (``NAT_DARTS``), a genotype JSON file (what derive.py and search_itnas.py write),
a ``Genotype(...)`` text or a NAS-Bench-201 ``arch_str``. Presets (FACTS.md section 5):
    paper (CIFAR): 20 cells, C=36, 600 epochs, batch 96, SGD lr 0.025 cosine, momentum 0.9, wd 3e-4, drop-path 0.2,
           auxiliary head 0.4, cutout 16, grad clip 5.   (ImageNet: 14 cells, C=48, 250 epochs, batch 128, lr 0.1,
           wd 3e-5, label smoothing 0.1, auxiliary 0.4, grad clip 5.)
    tiny:  5 cells, C=8, 2 epochs, 2,000 training images, batch 64: a CPU check of the whole pipeline in minutes.
Every knob can be set on its own (``--epochs 50 --channels 16``). The test set is evaluated after each epoch for
the log only; the reported accuracy is the final epoch's (nothing is selected on it).

The run directory gets config.json (config, versions, commit), log.csv (one row per epoch: loss, train and test
accuracy, lr, seconds), checkpoint.pt (after every epoch; model, optimizer, schedule, RNGs; --resume continues
from it) and results.json (params, MAdds, final test accuracy, model / method labels for analysis/).
Expected (tiny preset, CIFAR-10 from ../shared/data, 2 cores): about 2 minutes, ~25-35% test accuracy.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry

PRESETS = {  # (dataset family, preset) -> defaults of the knobs left at None
    ("cifar", "paper"): dict(layers=20, channels=36, epochs=600, batch_size=96, lr=0.025, weight_decay=3e-4,
                             drop_path=0.2, auxiliary_weight=0.4, cutout=16, label_smoothing=0.0, train_subset=0),
    ("cifar", "tiny"): dict(layers=5, channels=8, epochs=2, batch_size=64, lr=0.025, weight_decay=3e-4,
                            drop_path=0.2, auxiliary_weight=0.4, cutout=16, label_smoothing=0.0, train_subset=2000),
    ("imagenet", "paper"): dict(layers=14, channels=48, epochs=250, batch_size=128, lr=0.1, weight_decay=3e-5,
                                drop_path=0.0, auxiliary_weight=0.4, cutout=0, label_smoothing=0.1, train_subset=0),
    ("imagenet", "tiny"): dict(layers=5, channels=8, epochs=1, batch_size=16, lr=0.1, weight_decay=3e-5,
                               drop_path=0.0, auxiliary_weight=0.4, cutout=0, label_smoothing=0.1, train_subset=256),
}


@dataclass
class EvalConfig:
    arch: str = "NATv2_DARTS"  # registry name, genotype JSON file, Genotype(...) text, or NB201 arch_str
    dataset: str = "cifar10"  # cifar10, cifar100 or imagenet (ImageNet folders need torchvision)
    data: str | None = None  # the data set: CIFAR layouts as in train_natpp.py; ImageNet: DIR/{train,val}/<class>/
    preset: str = "paper"  # paper (FACTS.md section 5) or tiny (CPU minutes); knobs below left unset take it
    layers: int | None = None  # cells in the network
    channels: int | None = None  # initial channels C
    epochs: int | None = None  # training epochs (cosine schedule over them)
    batch_size: int | None = None  # batch size
    lr: float | None = None  # SGD learning rate (momentum 0.9)
    weight_decay: float | None = None  # SGD weight decay
    drop_path: float | None = None  # drop-path probability, ramped linearly over the epochs (DARTS)
    auxiliary_weight: float | None = None  # weight of the auxiliary head's loss (0 = no auxiliary head)
    cutout: int | None = None  # cutout size (0 = off)
    label_smoothing: float | None = None  # label smoothing of the loss
    train_subset: int | None = None  # train on a fixed random N of the training images (0 = all)
    grad_clip: float = 5.0  # gradient-norm clip
    model: str | None = None  # label for analysis tables (default: from the registry name, e.g. DARTS)
    method: str | None = None  # label for analysis tables: /, NAT, NAT++, ITNAS ... (default: from the name)
    seed: int = 0  # seeds torch, numpy and the data order
    num_gpus: int = 0  # 0 = CPU, 1 = one GPU (single-process training)
    workers: int = 4  # ImageNet data-loader workers
    out: str | None = None  # run directory (default runs/eval-<arch>-<dataset>-s<seed>-<time>)
    resume: str | None = None  # run directory of a killed run to continue

    def resolved(self) -> EvalConfig:
        family = "imagenet" if self.dataset == "imagenet" else "cifar"
        preset = PRESETS[(family, self.preset)]
        return dataclasses.replace(self, **{k: v for k, v in preset.items() if getattr(self, k) is None})


def model_and_method(name: str) -> tuple[str, str]:
    """Table labels from a registry-style name: NATv2_DARTS -> (DARTS, NAT++), NAT_ENAS -> (ENAS, NAT)."""
    stem = Path(name).stem if name.endswith(".json") else name
    method = "/"
    for prefix, m in (("NATv2_", "NAT++"), ("NAT_", "NAT")):
        if stem.startswith(prefix):
            stem, method = stem[len(prefix):], m
    aliases = {"DARTS_V2": "DARTS", "PC_DARTS_cifar": "PC-DARTS", "VGG": "VGG16", "Mobilenetv2": "MobileNetV2",
               "MobileNetv2": "MobileNetV2"}
    return aliases.get(stem, stem), method


def parse_args(argv) -> EvalConfig:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(EvalConfig):
        kind = int if "int" in str(f.type) else float if "float" in str(f.type) else str
        choices = {"dataset": ["cifar10", "cifar100", "imagenet"], "preset": ["paper", "tiny"]}.get(f.name)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, choices=choices,
                       help=f"(default: {f.default})")
    cfg = EvalConfig(**vars(p.parse_args(argv)))
    if cfg.resume:
        return cfg
    cfg = cfg.resolved()
    if not cfg.data:
        raise NatrlError("--data is required: the data set's directory or tarball (e.g. ../shared/data/cifar10_jpg.tar.gz)")
    for name in ("layers", "channels", "epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            raise NatrlError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.lr <= 0 or not 0 <= cfg.drop_path < 1 or cfg.auxiliary_weight < 0 or cfg.train_subset < 0:
        raise NatrlError("--lr > 0, 0 <= --drop-path < 1, --auxiliary-weight >= 0 and --train-subset >= 0 are required")
    if cfg.num_gpus not in (0, 1):
        raise NatrlError(f"--num-gpus {cfg.num_gpus}: training from scratch uses one device (0 = CPU or 1 GPU)")
    if cfg.num_gpus:
        import torch
        if not torch.cuda.is_available():
            raise NatrlError("--num-gpus 1 but no CUDA device is visible; use --num-gpus 0 to train on CPU")
    return cfg


def load_arch(spec: str):
    """(short name for the run, genotype) of ``--arch`` (anything ``zoo.resolve`` reads)."""
    from natrl.zoo import resolve
    name, genotype = resolve(spec)
    return ("nb201" if spec.strip().startswith("|") else "custom" if name == "Genotype(...)" else name), genotype


class CifarData:
    """Train/test batches of CIFAR-10/100 on the device (augmentation on the device, as for the supernet)."""

    def __init__(self, cfg: EvalConfig, device):
        import numpy as np

        from natrl.datasets import DeviceBatches, load_cifar10
        d = load_cifar10(cfg.data, dataset=cfg.dataset)
        keep = np.arange(len(d["train_y"]))
        if cfg.train_subset:  # a fixed random subset (files are often stored class by class)
            keep = np.sort(np.random.default_rng(0).permutation(len(keep))[:cfg.train_subset])
        self.train = DeviceBatches(d["train_x"][keep], d["train_y"][keep], cfg.batch_size, device, augment=True,
                                   cutout=cfg.cutout, seed=cfg.seed)
        self.test = DeviceBatches(d["test_x"], d["test_y"], 256, device)
        self.num_classes = int(max(d["train_y"].max(), d["test_y"].max())) + 1

    def train_batches(self):
        return self.train.batches(shuffle=True)

    def test_batches(self):
        return self.test.batches(shuffle=False)

    def state_dict(self):
        return self.train.state_dict()

    def load_state_dict(self, s):
        self.train.load_state_dict(s)


class ImageNetData:
    """ImageNet folders DIR/{train,val}/<class>/*.JPEG through torchvision (an optional dependency)."""

    def __init__(self, cfg: EvalConfig, device):
        try:
            import torchvision.datasets as tvd
            import torchvision.transforms as T
        except ImportError:
            raise NatrlError("ImageNet folders need torchvision, an optional extra: pip install torchvision "
                             "(a build matching your torch); CIFAR-10/100 need nothing more") from None
        import torch
        root = Path(cfg.data)
        if not (root / "train").is_dir() or not (root / "val").is_dir():
            raise NatrlError(f"no ImageNet folders at {root}; expected {root}/train/<class>/*.JPEG and {root}/val/<class>/")
        norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        train = tvd.ImageFolder(root / "train", T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
                                                           T.ColorJitter(0.4, 0.4, 0.4, 0.2), T.ToTensor(), norm]))
        if cfg.train_subset:
            train = torch.utils.data.Subset(train, range(min(cfg.train_subset, len(train))))
        val = tvd.ImageFolder(root / "val", T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm]))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.train = torch.utils.data.DataLoader(train, cfg.batch_size, shuffle=True, generator=self.generator,
                                                 num_workers=cfg.workers, pin_memory=device.type == "cuda")
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


def save_checkpoint(out: Path, state: dict):
    from natrl.rundir import save_checkpoint_file
    save_checkpoint_file(out / "checkpoint.pt", state)


def load_checkpoint(out: Path) -> dict | None:
    from natrl.rundir import read_checkpoint_file
    return read_checkpoint_file(out / "checkpoint.pt") if (out / "checkpoint.pt").exists() else None


def resume_config(run_dir: str) -> EvalConfig:
    from natrl.rundir import resume_config as load
    return load(run_dir, EvalConfig, "train_eval.py")


def evaluate(net, batches) -> float:
    import torch
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            logits, _ = net(x)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)


def train(cfg: EvalConfig) -> Path:
    import csv

    import torch

    from natrl.costs import network_cost
    from natrl.nets.eval_net import DATASETS, build_network
    from natrl.rundir import create_run_dir, seed_everything, write_json

    name, genotype = load_arch(cfg.arch)
    device = torch.device("cuda" if cfg.num_gpus else "cpu")
    data = (ImageNetData if cfg.dataset == "imagenet" else CifarData)(cfg, device)  # fails before any file is written
    resolution, num_classes = DATASETS[cfg.dataset]
    if cfg.dataset != "imagenet" and data.num_classes > num_classes:
        raise NatrlError(f"the data has {data.num_classes} classes, {cfg.dataset} has {num_classes}; check --dataset")
    if cfg.resume:
        out = Path(cfg.resume)
        ckpt = load_checkpoint(out)
        if ckpt is None:
            raise NatrlError(f"{out} has no checkpoint.pt to resume (it is written after each epoch)")
    else:
        run = f"eval-{name}-{cfg.dataset}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        out, ckpt = create_run_dir(Path(cfg.out or Path("runs") / run), cfg), None
    print(f"run directory: {out}", flush=True)
    seed_everything(cfg.seed)
    aux = cfg.auxiliary_weight > 0 and genotype.space != "nb201"
    net = build_network(genotype, cfg.dataset, C=cfg.channels, layers=cfg.layers, auxiliary=aux)
    cost = network_cost(net, resolution)  # costs of the network as built (aux head excluded)
    net = net.to(device)
    opt = torch.optim.SGD(net.parameters(), cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    rows, first = [], 1
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        data.load_state_dict(ckpt["data"])
        torch.set_rng_state(ckpt["torch_rng"])
        rows, first = ckpt["rows"], ckpt["epoch"] + 1
        print(f"resumed after epoch {ckpt['epoch']}", flush=True)
    print(f"{name}: {cost.params_m:.3f}M params, {cost.madds_m:.1f}M MAdds; {cfg.epochs} epochs on {cfg.dataset} "
          f"({'GPU' if cfg.num_gpus else 'CPU'})", flush=True)
    started = time.time() - (rows[-1]["seconds"] if rows else 0.0)
    for epoch in range(first, cfg.epochs + 1):
        net.train()
        if hasattr(net, "drop_path_prob"):
            net.drop_path_prob = cfg.drop_path * (epoch - 1) / cfg.epochs  # DARTS' linear ramp
        lr = opt.param_groups[0]["lr"]
        seen = correct = 0
        loss_sum = 0.0
        for x, y in data.train_batches():
            logits, logits_aux = net(x)
            loss = loss_fn(logits, y)
            if logits_aux is not None:
                loss = loss + cfg.auxiliary_weight * loss_fn(logits_aux, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
        sched.step()
        if not math.isfinite(loss_sum):
            raise NatrlError(f"the loss diverged in epoch {epoch}; lower --lr (checkpoint of epoch {epoch - 1} kept)")
        test_acc = evaluate(net, data.test_batches())
        rows.append({"epoch": epoch, "lr": round(lr, 6), "train_loss": round(loss_sum / seen, 4),
                     "train_acc": round(100.0 * correct / seen, 2), "test_acc": round(test_acc, 2),
                     "seconds": round(time.time() - started, 1)})
        with open(out / "log.csv", "w", newline="") as f:  # rewritten whole: a resumed run keeps one clean log
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        save_checkpoint(out, {"epoch": epoch, "model": net.state_dict(), "optimizer": opt.state_dict(),
                              "scheduler": sched.state_dict(), "data": data.state_dict(),
                              "torch_rng": torch.get_rng_state(), "rows": rows})
        r = rows[-1]
        print(f"epoch {epoch:4d}/{cfg.epochs}  loss {r['train_loss']:.3f}  train {r['train_acc']:5.1f}%  "
              f"test {r['test_acc']:5.1f}%  lr {lr:.4f}  {r['seconds']:7.1f}s", flush=True)
    model, method = model_and_method(name)
    results = {"kind": "train_eval", "arch": name, "model": cfg.model or model, "method": cfg.method or method,
               "dataset": cfg.dataset, "genotype": genotype.to_json(), "params_M": round(cost.params_m, 4),
               "madds_M": round(cost.madds_m, 2), "test_acc": rows[-1]["test_acc"], "epochs": cfg.epochs,
               "layers": cfg.layers, "channels": cfg.channels, "seed": cfg.seed, "run": out.name,
               "train_seconds": rows[-1]["seconds"]}
    write_json(out / "results.json", results)
    print(json.dumps({"run_dir": str(out), "test_acc": results["test_acc"], "params_M": results["params_M"],
                      "madds_M": results["madds_M"]}))
    return out


@cli_entry
def main(argv=None):
    cfg = parse_args(argv)
    return train(resume_config(cfg.resume) if cfg.resume else cfg)


if __name__ == "__main__":
    main()
    sys.exit(0)
