"""Figures 4-12 of the paper, redrawn from our runs with the paper's values marked."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from rlaux.io import atomic_write
from rlaux.report.tables import t_interval


@dataclass(frozen=True)
class Figure:
    number: int
    title: str
    bars: dict[str, str]  # experiment id -> label on the x axis
    kind: str = "accuracy"  # accuracy | curves | prf
    note: str = ""


FIGURES = [
    Figure(
        4,
        "CIFAR-100-20: auxiliary-task methods",
        {"c100-single": "single", "c100-human": "human", "c100-maxl": "MAXL", "c100-rl": "RL-AUX"},
    ),
    Figure(
        5,
        "CIFAR-100-20: RL-AUX, auxiliary weight λ",
        {
            "c100-rl-lam0p25": "λ=0.25",
            "c100-rl-lam0p5": "λ=0.5",
            "c100-rl": "λ=1",
            "c100-rl-lam2": "λ=2",
            "c100-rl-lam4": "λ=4",
        },
    ),
    Figure(
        6,
        "CIFAR-100-20: weight-aware methods",
        {"c100-maxl": "MAXL", "c100-rl": "RL-AUX", "c100-wa-maxl": "WA-MAXL", "c100-wa-rl": "WA-RL"},
    ),
    Figure(
        7,
        "CIFAR-10",
        {
            "c10-single": "single",
            "c10-maxl": "MAXL",
            "c10-rl": "RL-AUX",
            "c10-wa-maxl": "WA-MAXL",
            "c10-wa-rl": "WA-RL",
        },
        kind="curves",
    ),
    Figure(
        8,
        "SVHN",
        {
            "svhn-single": "single",
            "svhn-maxl": "MAXL",
            "svhn-rl": "RL-AUX",
            "svhn-wa-maxl": "WA-MAXL",
            "svhn-wa-rl": "WA-RL",
        },
        kind="curves",
    ),
    Figure(
        9,
        "CIFAR-100-20: MAXL, auxiliary weight λ",
        {
            "c100-maxl-lam0p25": "λ=0.25",
            "c100-maxl-lam0p5": "λ=0.5",
            "c100-maxl": "λ=1",
            "c100-maxl-lam2": "λ=2",
            "c100-maxl-lam4": "λ=4",
        },
    ),
    Figure(
        10,
        "CIFAR-100-20: RL-AUX environment reset",
        {"c100-rl": "reset every epoch", "c100-rl-reset-batch": "reset every batch"},
        note="paper (A.2): no difference; no number reported",
    ),
    Figure(11, "CIFAR-100-20: macro precision / recall / F1", {"c100-rl": "RL-AUX", "c100-wa-rl": "WA-RL"}, kind="prf"),
    Figure(
        12,
        "SVHN: macro precision / recall / F1",
        {"svhn-single": "single", "svhn-rl": "RL-AUX", "svhn-wa-rl": "WA-RL"},
        kind="prf",
    ),
]


def _axis(ax, fig: Figure, present: set[str]) -> list[str]:
    """Every category of the figure on the x axis, runs or not, so the paper's values always show."""
    labels = list(fig.bars.values())
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    for x, (exp_id, _label) in enumerate(fig.bars.items()):
        if exp_id not in present:
            ax.text(
                x,
                0.02,
                "not run in\nthis profile",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                color="0.4",
            )
    return labels


def _paper_marks(ax, paper: pd.DataFrame, fig: Figure, offsets: dict[str, float] | None = None) -> None:
    """Black diamonds at the paper's values, on the bars they belong to."""
    labels = list(fig.bars.values())
    rows = paper[(paper.figure == fig.number) & paper.experiment.isin(fig.bars)]
    for i, p in enumerate(rows.itertuples()):
        x = labels.index(fig.bars[p.experiment]) + (offsets or {}).get(p.metric, 0.0)
        ax.plot(x, p.value, "D", color="black", markersize=7, zorder=5, label="paper" if i == 0 else None)


def _bars(ax, runs: pd.DataFrame, paper: pd.DataFrame, fig: Figure) -> None:
    df = runs[runs.experiment.isin(fig.bars)].assign(label=lambda d: d.experiment.map(fig.bars))
    order = _axis(ax, fig, set(df.experiment))
    if len(df):
        sns.barplot(
            data=df,
            x="label",
            y="test_acc_last15",
            order=order,
            errorbar=t_interval,
            capsize=0.15,
            color=sns.color_palette("muted")[0],
            ax=ax,
            label="ours",
        )
        # no jitter: seaborn draws it from numpy's global RNG, so the same runs would give another PNG
        sns.stripplot(data=df, x="label", y="test_acc_last15", order=order, color="0.25", size=4, jitter=False, ax=ax)
    _paper_marks(ax, paper, fig)
    values = list(df.test_acc_last15) + list(paper.loc[paper.figure == fig.number, "value"])
    ax.set_ylim(max(0, min(values, default=0) - 5), min(100, max(values, default=100) + 3))
    ax.set_xlabel("")
    ax.set_ylabel("test accuracy, mean of last 15 epochs (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)


def _prf(ax, runs: pd.DataFrame, paper: pd.DataFrame, fig: Figure) -> None:
    df = runs[runs.experiment.isin(fig.bars)].assign(label=lambda d: d.experiment.map(fig.bars))
    order = _axis(ax, fig, set(df.experiment))
    if len(df):
        long = df.melt(id_vars=["label", "seed"], value_vars=["precision", "recall", "f1"], var_name="metric")
        sns.barplot(data=long, x="label", y="value", hue="metric", order=order, errorbar=t_interval, capsize=0.1, ax=ax)
    _paper_marks(ax, paper, fig, offsets={"precision": -0.267, "recall": 0.0, "f1": 0.267})
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("")
    ax.set_ylabel("macro score at best-validation epoch")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)


def _curves(ax, curves: pd.DataFrame, fig: Figure) -> None:
    df = (
        curves[curves.experiment.isin(fig.bars)].assign(method=lambda d: d.experiment.map(fig.bars))
        if len(curves)
        else curves
    )
    if df.empty:
        ax.text(0.5, 0.5, "no runs in this profile", ha="center", va="center", transform=ax.transAxes)
    else:
        sns.lineplot(data=df, x="epoch", y="test_acc", hue="method", errorbar="se", ax=ax)
        ax.set_ylim(0, min(100, df.test_acc.max() + 10))
        ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("test accuracy over epochs (mean, band: ±1 s.e. over seeds)", fontsize=9)


def draw(fig: Figure, runs: pd.DataFrame, curves: pd.DataFrame, paper: pd.DataFrame, profile: str) -> plt.Figure:
    present = runs[runs.experiment.isin(fig.bars)] if len(runs) else runs
    wide = fig.kind == "curves"
    f, axes = plt.subplots(1, 2 if wide else 1, figsize=(12 if wide else 7.5, 4.4), squeeze=False)
    f.suptitle(f"Fig. {fig.number}: {fig.title}  [{profile} profile]", fontsize=11)
    (_prf if fig.kind == "prf" else _bars)(axes[0][-1], present, paper, fig)
    if wide:
        _curves(axes[0][0], curves, fig)
    n = int(present.groupby("experiment").size().max()) if len(present) else 0
    caption = (
        f"bars: mean over {n} seeds, whiskers: 95% t-interval, dots: seeds, ◆: paper"
        if n
        else "◆: paper; no runs of these experiments in this profile (SVHN and the λ sweeps are paper-only)"
    )
    f.text(0.5, 0.005, caption + (f"; {fig.note}" if fig.note else ""), ha="center", fontsize=8)
    f.tight_layout(rect=(0, 0.04, 1, 0.95))
    return f


def write_figures(
    runs: pd.DataFrame, curves: pd.DataFrame, paper: pd.DataFrame, profile: str, out_dir: Path
) -> list[Path]:
    sns.set_theme(style="whitegrid", context="notebook")
    paths = []
    for fig in FIGURES:
        f = draw(fig, runs, curves, paper, profile)
        path = out_dir / f"fig{fig.number:02d}.png"
        buf = io.BytesIO()
        f.savefig(buf, format="png", dpi=120)
        plt.close(f)
        png = buf.getvalue()
        atomic_write(path, lambda fh, png=png: fh.write(png))
        paths.append(path)
    return paths
