"""A campaign's settings, one class for `nas search` and `nas ablate`: where its points run, its
plan (`SearchPlan`, `AblatePlan`) and its `key=value` words, parsed here once. Each field carries
its flag (`flag()`), so argparse, the resume checks and the resume command read one table."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Generic, Iterable, TypeVar

from nas.errors import NasError
from nas.words import RunOverrides, parse_words

P = TypeVar("P")


@dataclass(frozen=True)
class CampaignKind:
    """A plan's names in messages, help and folders: "search" of "trial"s in searches/, by SPACE."""
    campaign: str
    unit: str
    output_dir: str
    named: str


@dataclass(frozen=True)
class Flag:
    """An option (`--seed 3`), a switch (`--resume`; `--no-asha` for one on by default) or a `key=`
    word (`max_macs=20e6`); `{unit}` etc. in its name and help come from the plan's CampaignKind."""
    name: str
    help: str = ""
    default: Any = None
    type: Any = None  # int, float; None: str (or a switch, for a bool default)
    kept: bool = False  # --resume keeps the value the campaign started with; another is refused
    choices: tuple[str, ...] | None = None

    @property
    def is_word(self) -> bool:
        return self.name.endswith("=")

    def typed(self, key: str, value: Any) -> Any:
        """A `key=` word's value as the field's type (one line naming the word if it is not)."""
        try:
            return self.type(value) if self.type else value
        except (TypeError, ValueError):
            raise NasError(f"{key}={value!r} must be a number, e.g. {key}=20e6") from None

    def argv(self, value: Any, unit: str) -> list[str]:
        """The command-line words that give `value`."""
        if self.is_word:
            return [f"{self.name}{value:g}" if isinstance(value, float) else f"{self.name}{value}"]
        if isinstance(self.default, bool):
            return [self.name] if value != self.default else []
        return [self.name.format(unit=unit), str(value)]

    def shown(self, value: Any, unit: str) -> str:
        """How the user typed `value` ("--no-asha" names a switch's off; its on is the default)."""
        return " ".join(self.argv(value, unit)) or f"the default ({self.name.removeprefix('--no-')} on)"


def flag(name: str, help: str = "", default: Any = None, *, required: bool = False, **kw: Any) -> Any:
    """A settings field with its flag (`required`: a field without a default, a required option)."""
    meta = {"flag": Flag(name, help, default, **kw)}
    return field(metadata=meta) if required else field(default=default, metadata=meta)


def flags(cls: type) -> dict[str, Flag]:
    """A settings class's table: field -> its Flag."""
    return {f.name: f.metadata["flag"] for f in fields(cls) if "flag" in f.metadata}


@dataclass(frozen=True)
class CampaignSettings(Generic[P]):
    """What a search and an ablation both take from the command line, and their plan."""
    plan: P
    name: str | None = flag("--name", "{campaign} name (default: {named}-DATE); reuse it with --resume")
    resume: bool = flag("--resume", "continue the {campaign} called --name", False)
    output_dir: str | None = flag("--output-dir", "where {campaign} folders go (default: {output_dir})")
    address: str | None = flag("--address", "join a running Ray cluster (default: start a local one)")
    accelerator: str = flag("--accelerator", "where points train (auto: what the Ray cluster has: GPU,"
                            " else NPU, else CPU)", "auto", choices=("auto", "cuda", "npu", "cpu"))
    per_point: float | None = flag("--per-{unit}", "accelerator share per {unit} (fractions share a"
                                   " device; default 0.25)", type=float)
    cpus_per_point: float = flag("--cpus-per-{unit}", "CPUs per {unit} (its training threads)", 1.0, type=float)
    gpus_per_point: float | None = flag("--gpus-per-{unit}", "same as --accelerator cuda --per-{unit}"
                                        " SHARE (0: train on CPUs)", type=float)  # the older flag, still read
    concurrency: int | None = flag("--concurrency", "{unit}s at once (default: what resources allow)", type=int)
    progress: bool = flag("--no-progress", "no progress bar", True)
    run: RunOverrides = field(default_factory=RunOverrides)  # the `nas run` words, parsed

    def __post_init__(self) -> None:
        if self.output_dir is None:
            object.__setattr__(self, "output_dir", self.plan.KIND.output_dir)

    @property
    def unit(self) -> str:
        return self.plan.KIND.unit

    def check(self) -> None:
        """The rules every campaign shares, one line each; flags that contradict are refused."""
        unit = self.unit
        if self.cpus_per_point <= 0 or (self.gpus_per_point or 0) < 0 or (self.per_point or 0) < 0:
            raise NasError(f"--cpus-per-{unit} must be > 0 and --per-{unit} / --gpus-per-{unit} >= 0")
        if self.concurrency is not None and self.concurrency < 1:
            raise NasError(f"--concurrency {self.concurrency} must be >= 1")
        if self.resume and not self.name:
            raise NasError(f"--resume needs --name NAME (the {self.plan.KIND.campaign} to continue, a folder"
                           f" of --output-dir {self.output_dir})")
        self.accelerator_share()

    def accelerator_share(self) -> tuple[str, float | None]:
        """(accelerator, share) for `nas.workers.plan_workers`, from `--accelerator`, `--per-{unit}`
        and the older `--gpus-per-{unit}` (0: CPUs); contradicting flags are refused in one line."""
        unit, accelerator, share, gpu_share = self.unit, self.accelerator, self.per_point, self.gpus_per_point
        if gpu_share is not None and share is not None:
            raise NasError(f"give --per-{unit} or --gpus-per-{unit}, not both (--gpus-per-{unit} S is"
                           f" --accelerator cuda --per-{unit} S)")
        if gpu_share and accelerator not in ("auto", "cuda"):
            raise NasError(f"--gpus-per-{unit} trains on GPUs; it contradicts --accelerator {accelerator}")
        if share is not None and accelerator == "cpu":
            raise NasError(f"--per-{unit} is an accelerator share; it needs --accelerator auto, cuda or npu,"
                           " not cpu")
        if gpu_share is not None and share is None:
            return ("cuda" if gpu_share > 0 else "cpu"), gpu_share
        return accelerator, share

    def with_plan(self, **changes: Any) -> CampaignSettings[P]:
        return replace(self, plan=replace(self.plan, **changes))

    def params(self) -> dict[str, Any]:
        """Flat, for MLflow: the fields, the plan's and the words."""
        common = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("plan", "run")}
        return {**common, **asdict(self.plan), "overrides": " ".join(self.run.words())}

    def stored(self) -> dict[str, Any]:
        """The form the state file keeps (read back by `from_stored`)."""
        return asdict(self)

    @classmethod
    def from_stored(cls, data: dict[str, Any], plan_cls: type[P]) -> CampaignSettings[P]:
        plan_fields = {f.name for f in fields(plan_cls)}
        plan = plan_cls(**{k: v for k, v in data.get("plan", {}).items() if k in plan_fields})
        run = RunOverrides(dict(data.get("run", {}).get("values", {})))
        return cls(plan, run=run, **{k: data[k] for k in FLAGS if k in data})

    def command(self, first: tuple[str, ...] = ()) -> list[str]:
        """The command-line words for these settings: the `first` fields always, then those off
        their defaults, then the `key=value` words."""
        table = {**{k: (fl, self.plan) for k, fl in flags(type(self.plan)).items()},
                 **{k: (fl, self) for k, fl in FLAGS.items()}}
        out: list[str] = []
        for key in (*first, *(k for k in table if k not in first)):
            fl, owner = table[key]
            value = getattr(owner, key)
            if key in first or value != (self.plan.KIND.output_dir if key == "output_dir" else fl.default):
                out += fl.argv(value, self.unit)
        return out + self.run.words()


FLAGS: dict[str, Flag] = flags(CampaignSettings)


def make_settings(plan_cls: type[P], words: Iterable[str] = (), **values: Any) -> CampaignSettings[P]:
    """Settings from the command line's values (routed to the plan or the common fields by name)
    and its words, parsed once: the plan's own keys (`max_macs=`) to it, the rest `nas run` keys."""
    given = parse_words(list(words))
    own = {fl.name[:-1]: (key, fl) for key, fl in flags(plan_cls).items() if fl.is_word}
    extras = {own[k][0]: own[k][1].typed(k, given.pop(k)) for k in list(given) if k in own}
    plan_fields = {f.name for f in fields(plan_cls)}
    plan = plan_cls(**{k: v for k, v in values.items() if k in plan_fields}, **extras)
    common = {k: v for k, v in values.items() if k not in plan_fields}
    # lazy: nas.config (omegaconf, numpy) costs 0.1-0.4 s that `nas --help` does not need
    from nas.config import load_run_config

    run = RunOverrides(given)
    load_run_config(overrides=run)  # an unknown key or a bad value fails here, in one line
    return CampaignSettings(plan, run=run, **common)


def from_args(args: argparse.Namespace, plan_cls: type[P], words: Iterable[str],
              **values: Any) -> CampaignSettings[P]:
    """Settings from options that `add_flags` set up, the words and the plan's other `values`."""
    table = {**flags(plan_cls), **FLAGS}
    return make_settings(plan_cls, words, **{k: getattr(args, k) for k in table if hasattr(args, k)}, **values)


def add_flags(parser: argparse.ArgumentParser, plan_cls: Any) -> None:
    """The options of a campaign with this plan: its own, then the common ones."""
    names = asdict(plan_cls.KIND)
    required = {f.name for f in fields(plan_cls) if f.default is MISSING}
    for key, fl in {**flags(plan_cls), **FLAGS}.items():
        if fl.is_word:
            continue
        kw: dict[str, Any] = {"dest": key, "help": fl.help.format(**names) or None, "default": fl.default}
        if isinstance(fl.default, bool):
            kw["action"] = "store_false" if fl.default else "store_true"
        else:
            kw.update(type=fl.type, choices=fl.choices, required=key in required, metavar=None if fl.choices
                      else fl.name.format(**names).lstrip("-").replace("-", "_").upper())
        parser.add_argument(fl.name.format(**names), **kw)
