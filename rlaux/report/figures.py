"""Figures 4-12 of the paper, redrawn from our runs with the paper's values marked, and the claims' forest plot."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from rlaux.errors import UserError
from rlaux.io import atomic_write
from rlaux.report.claims import HEADLINE_METRIC, all_claims, claim_list, last15_name, run_epochs, trained_datasets
from rlaux.report.spec import FigureSpec
from rlaux.report.spec import load as load_spec
from rlaux.report.stats import t_interval


def figures(trained: set[str] | None = None) -> list[FigureSpec]:
    """report.yaml's figures, in its order: all of them, or those a profile that trained `trained` shows."""
    spec = load_spec()
    return [f for f in spec.figures if trained is None or spec.shown(f.dataset, trained)]


def heading(fig: FigureSpec) -> str:
    """'Fig. 4: CIFAR-100-20: ...' for the paper's figures, the title alone for the suite's own."""
    return fig.title if fig.paper_figure is None else f"Fig. {fig.paper_figure}: {fig.title}"


def _axis(ax, fig: FigureSpec, present: set[str]) -> list[str]:
    """Every category of the figure on the x axis, runs or not, so the paper's values always show."""
    labels = list(fig.bars.values())
    crowded = len(labels) > 5  # the suite's own figures name more arms than the paper's: slant their labels
    ax.set_xticks(range(len(labels)), labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
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
                fontsize=6 if crowded else 8,
                rotation=90 if crowded else 0,
                color="0.4",
            )
    return labels


def _paper_marks(ax, paper: pd.DataFrame, fig: FigureSpec, offsets: dict[str, float] | None = None) -> None:
    """Black diamonds at the paper's values, on the bars they belong to."""
    labels = list(fig.bars.values())
    rows = paper[(paper.figure == fig.paper_figure) & paper.experiment.isin(fig.bars)]
    for i, p in enumerate(rows.itertuples()):
        x = labels.index(fig.bars[p.experiment]) + (offsets or {}).get(p.metric, 0.0)
        ax.plot(x, p.value, "D", color="black", markersize=7, zorder=5, label="paper" if i == 0 else None)


SPLIT_GAP = 15.0
"""pp between our highest value and the paper's lowest above which the y axis is broken in two: on one axis
from 17% to 76%, the differences between methods that the claims are about would be lost."""


def _dots(ax, runs: pd.DataFrame, paper: pd.DataFrame, fig: FigureSpec, metric_name: str, notes: bool = True) -> None:
    """Mean and 95% t-interval per experiment, seeds beside it: no bar whose height from zero hides a 1 pp gap."""
    df = runs[runs.experiment.isin(fig.bars)].assign(label=lambda d: d.experiment.map(fig.bars))
    order = _axis(ax, fig, set(df.experiment) if notes else set(fig.bars))
    if len(df):
        sns.pointplot(
            data=df,
            x="label",
            y="test_acc_last15",
            order=order,
            errorbar=t_interval,
            capsize=0.15,
            linestyle="none",
            color=sns.color_palette("muted")[0],
            ax=ax,
            label=f"ours, {metric_name}: mean, 95% t-interval",
        )
        x = df.label.map({label: i for i, label in enumerate(order)}) + 0.2  # fixed offset: same runs, same PNG
        ax.scatter(x, df.test_acc_last15, s=12, color="0.35", zorder=4, label="ours: seeds")
        # the headline metric beside it: test accuracy at the best-validation epoch (no paper value exists for it)
        named = False
        for i, label in enumerate(order):
            low, high = t_interval(df.loc[df.label == label, HEADLINE_METRIC])
            if not math.isnan(low):
                ax.errorbar(
                    i - 0.2,
                    (low + high) / 2,
                    yerr=(high - low) / 2,
                    fmt="o",
                    mfc="white",
                    color=sns.color_palette("muted")[1],
                    capsize=3,
                    label=None if named else "ours, best-validation epoch: mean, 95% t-interval",
                )
                named = True
    _paper_marks(ax, paper, fig)
    values = (
        list(df.test_acc_last15)
        + list(df.get(HEADLINE_METRIC, []))
        + list(paper.loc[paper.figure == fig.paper_figure, "value"])
    )
    ax.set_ylim(max(0, min(values, default=0) - 5), min(100, max(values, default=100) + 3))
    ax.set_xlabel("")
    ax.set_ylabel("test accuracy (%)")
    if ax.get_legend_handles_labels()[0]:  # Fig. 10 without runs has neither ours nor the paper's
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)


def _prf(ax, runs: pd.DataFrame, paper: pd.DataFrame, fig: FigureSpec) -> None:
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


def _curves(ax, curves: pd.DataFrame, fig: FigureSpec) -> None:
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


def _split_dots(f: plt.Figure, ax, runs: pd.DataFrame, paper: pd.DataFrame, fig: FigureSpec, metric_name: str) -> None:
    """`_dots` on a y axis broken in two when the paper's values lie far above ours: the paper's on top, ours below,
    each panel spanning its own values, so a 1 pp difference between our methods stays visible."""
    ours = runs.loc[runs.experiment.isin(fig.bars), ["test_acc_last15", HEADLINE_METRIC]].stack()
    theirs = paper.loc[(paper.figure == fig.paper_figure) & paper.experiment.isin(fig.bars), "value"]
    if ours.empty or theirs.empty or theirs.min() - ours.max() < SPLIT_GAP:
        _dots(ax, runs, paper, fig, metric_name)
        return
    grid = ax.get_subplotspec().subgridspec(2, 1, height_ratios=(1, 2), hspace=0.06)
    ax.remove()
    top = f.add_subplot(grid[0])
    bottom = f.add_subplot(grid[1], sharex=top)
    _dots(top, runs, paper, fig, metric_name, notes=False)
    _dots(bottom, runs, paper, fig, metric_name)
    top.set_ylim(max(0, theirs.min() - 3), min(100, theirs.max() + 3))
    bottom.set_ylim(max(0, ours.min() - 3), min(100, ours.max() + 3))
    if (legend := bottom.get_legend()) is not None:
        legend.remove()
    top.set_ylabel("")
    bottom.set_ylabel("test accuracy (%)")
    top.spines["bottom"].set_visible(False)
    bottom.spines["top"].set_visible(False)
    top.tick_params(axis="x", bottom=False, labelbottom=False)
    for a, y in ((top, 0), (bottom, 1)):  # the break marks
        a.plot(
            [0, 1],
            [y, y],
            transform=a.transAxes,
            marker=[(-1, -0.5), (1, 0.5)],
            markersize=10,
            linestyle="none",
            color="0.3",
            clip_on=False,
        )


def draw(fig: FigureSpec, runs: pd.DataFrame, curves: pd.DataFrame, paper: pd.DataFrame, profile: str) -> plt.Figure:
    present = runs[runs.experiment.isin(fig.bars)] if len(runs) else runs
    wide = fig.kind == "curves"
    f, axes = plt.subplots(1, 2 if wide else 1, figsize=(12 if wide else 7.5, 4.4), squeeze=False)
    f.suptitle(f"{heading(fig)}  [{profile} profile]", fontsize=11)
    if fig.kind == "prf":
        _prf(axes[0][-1], present, paper, fig)
    else:
        own = curves[curves.experiment.isin(fig.bars)] if len(curves) else curves
        _split_dots(f, axes[0][-1], present, paper, fig, last15_name(run_epochs(present, own)))
    if wide:
        _curves(axes[0][0], curves, fig)
    n = int(present.groupby("experiment").size().max()) if len(present) else 0
    shown = "bars" if fig.kind == "prf" else "dots"
    caption = (
        f"{shown}: mean over {n} seeds, whiskers: 95% t-interval{', grey dots: seeds' if shown == 'dots' else ''}"
        ", ◆: paper"
        if n
        else "◆: paper; no runs of these experiments in this profile (SVHN and the λ sweeps are paper-only)"
    )
    f.text(0.5, 0.005, caption + (f"; {fig.note}" if fig.note else ""), ha="center", fontsize=8)
    f.tight_layout(rect=(0, 0.04, 1, 0.95))
    return f


CLAIMS_FIGURE = "claims.png"


def draw_claims(runs: pd.DataFrame, curves: pd.DataFrame, paper: pd.DataFrame, profile: str) -> plt.Figure:
    """Forest plot: per tested claim, better - worse with its 95% t-interval on both metrics, and the paper's."""
    cl = all_claims(runs, profile, paper)
    cl = cl[cl.n > 0]
    keys = list(dict.fromkeys(zip(cl.claim, cl.dataset, strict=True)))
    margins = {(c.text, c.dataset): c.margin for c in claim_list(trained_datasets(runs))}
    colours = sns.color_palette("muted")
    styles = (  # metric, row offset, marker, colour, legend
        (HEADLINE_METRIC, -0.15, "o", colours[0], "validation-selected (test_acc_best_val)"),
        ("test_acc_last15", 0.15, "s", colours[1], f"test_acc_last15: {last15_name(run_epochs(runs, curves))}"),
    )
    height = 1.6 + 0.62 * max(len(keys), 1)
    f, ax = plt.subplots(figsize=(10, height))
    f.suptitle(f"The paper's claims: better − worse, paired over seeds  [{profile} profile]", fontsize=11)
    seen: set[str] = set()

    def once(label: str) -> str | None:  # each legend entry once
        new = label not in seen
        seen.add(label)
        return label if new else None

    for i, key in enumerate(keys):
        rows = cl[(cl.claim == key[0]) & (cl.dataset == key[1])].set_index("metric")
        for metric, dy, marker, colour, label in styles:
            r = rows.loc[metric]
            err = None if pd.isna(r.ci95_low) else [[r.mean_difference - r.ci95_low], [r.ci95_high - r.mean_difference]]
            ax.errorbar(r.mean_difference, i + dy, xerr=err, fmt=marker, color=colour, capsize=3, label=once(label))
        theirs = rows.loc["test_acc_last15", "paper_difference"]
        if not pd.isna(theirs):
            ax.plot(theirs, i + 0.15, "D", color="black", markersize=7, zorder=5, label=once("paper's own difference"))
        if margins.get(key):
            ax.plot([-margins[key]] * 2, [i - 0.4, i + 0.4], ":", color="0.4", label=once("− margin"))
        for metric, dy, *_ in styles:  # each metric's own verdict (Holm-adjusted) beside its interval
            r = rows.loc[metric]
            word = r.verdict.split()[0]  # holds / reversed / inconclusive
            p = "" if pd.isna(r.get("p_holm", math.nan)) else f", p_Holm {r.p_holm:.2g}"
            ax.text(1.01, i + dy, word + p, transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    if keys:
        ax.set_yticks(range(len(keys)), [textwrap.fill(f"{c} [{d}]", 42) for c, d in keys], fontsize=8)
        ax.set_ylim(len(keys) - 0.5, -0.5)  # first claim on top
        f.legend(loc="lower center", ncol=2, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no claim has runs in this profile", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.axvline(0, color="black", linewidth=1)
    ax.grid(axis="y", visible=False)
    n = int(cl.n.max()) if len(cl) else 0
    ax.set_xlabel(
        f"percentage points: mean over {n} paired seeds, 95% t-interval (right: each metric's verdict, "
        "Holm-adjusted across the claims)",
        fontsize=9,
    )
    f.tight_layout(rect=(0, 0.55 / height, 0.86, 0.97))
    return f


def save_figure(f: plt.Figure, path: Path) -> Path:
    buf = io.BytesIO()
    f.savefig(buf, format="png", dpi=120)
    plt.close(f)
    png = buf.getvalue()
    atomic_write(path, lambda fh, png=png: fh.write(png))
    return path


def write_figures(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    paper: pd.DataFrame,
    profile: str,
    out_dir: Path,
    only: Iterable[str] | None = None,
) -> list[Path]:
    """report.yaml's figures that the profile shows (fig04.png ...) and the claims' forest plot (claims.png), or
    `only` those of them (by file stem). A name that is neither is refused before anything is drawn."""
    claims = Path(CLAIMS_FIGURE).stem
    known = [f.file for f in figures()] + [claims]
    if only is not None and (unknown := sorted(set(only) - set(known))):
        raise UserError(f"no figure {unknown} in report.yaml; its figures: {', '.join(known)}")
    wanted = set(known if only is None else only)
    sns.set_theme(style="whitegrid", context="notebook")
    paths = [
        save_figure(draw(fig, runs, curves, paper, profile), out_dir / f"{fig.file}.png")
        for fig in figures(trained_datasets(runs))
        if fig.file in wanted
    ]
    if claims in wanted:
        paths.append(save_figure(draw_claims(runs, curves, paper, profile), out_dir / CLAIMS_FIGURE))
    return paths
