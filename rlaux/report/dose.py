"""Can the agent learn? The oracle control's dose-response (issue 26): how far the agent's sampled labels move toward
the human fine labels when its reward is the answer plus noise, against the answer's share of the reward's
variance, one line per credit design.

Reads each run's history.csv and config.json under runs/<profile>/, as the search does: the oracle profile is not
part of the claims pipeline.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from rlaux.experiments import Params
from rlaux.io import write_text
from rlaux.report.collect import AGREEMENT_EPOCHS, final_agreement
from rlaux.report.figures import save_figure
from rlaux.report.markdown import md
from rlaux.report.stats import mean_ci


def nominal_share(noise: float, psi: int, batch_size: int) -> float:
    """The oracle's share of its reward's variance for a policy that samples uniformly within blocks: a batch's
    agreement has variance p(1 - p)/B with p = 1/ψ, the noise σ², so the share is that over their sum."""
    signal = (1 / psi) * (1 - 1 / psi) / batch_size
    return signal / (signal + noise**2)


def oracle_runs(params: Params, profile: str) -> int:
    """How many oracle runs the profile plans (finished or not)."""
    at = params.at(profile)
    return sum(cfg.rl.reward == "oracle" for _, _, cfg in at.active_runs())


def dose_table(params: Params, profile: str) -> pd.DataFrame:
    """One row per finished oracle run of the profile: credit, noise, nominal share, final fine agreement (a run
    still training is left out; `write_dose` says how many are)."""
    at = params.at(profile)
    rows = []
    for exp_id, seed, cfg in at.active_runs():
        if cfg.rl.reward != "oracle":
            continue
        run = at.run_dir(exp_id, seed)
        if not (run / "metrics.json").is_file():
            continue
        history = pd.read_csv(run / "history.csv")
        rows.append(
            {
                "experiment": exp_id,
                "seed": seed,
                "credit": cfg.rl.credit,
                "oracle_noise": cfg.rl.oracle_noise,
                "share": nominal_share(cfg.rl.oracle_noise, cfg.psi, cfg.batch_size),
                "epochs": len(history),
                "fine_agreement": final_agreement(history),
                "first_epoch_agreement": float(history["rl/fine_agreement"].dropna().iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def draw_dose(table: pd.DataFrame, chance: float) -> plt.Figure:
    f, ax = plt.subplots(figsize=(7, 4.2))
    if table.empty:
        ax.text(0.5, 0.5, "no oracle runs", ha="center", va="center", transform=ax.transAxes)
        return f
    sns.lineplot(data=table, x="share", y="fine_agreement", hue="credit", errorbar=None, marker="o", ax=ax)
    for _, g in table.groupby("credit"):
        ax.scatter(g.share, g.fine_agreement, s=14, color="0.35", zorder=4)
    ax.axhline(chance, color="0.5", linestyle="--", linewidth=1)
    ax.text(ax.get_xlim()[0], chance, " chance (1/ψ)", va="bottom", fontsize=8, color="0.4")
    ax.set_xscale("log")
    ax.set_xlabel("oracle's share of the reward's variance (nominal)")
    ax.set_ylabel(f"fine agreement, last {AGREEMENT_EPOCHS} epochs")
    ax.set_title("Can the agent learn from a reward that is the answer? (lines: mean; dots: seeds)", fontsize=10)
    f.tight_layout()
    return f


def write_dose(params: Params, profile: str, out_dir: Path) -> pd.DataFrame:
    """<out_dir>/dose_response.csv, .md and .png."""
    at = params.at(profile)  # a known profile, or ConfigError naming them
    table = dose_table(params, profile)
    write_text(out_dir / "dose_response.csv", table.to_csv(index=False))
    psi = next((cfg.psi for _, _, cfg in at.active_runs()), 5)
    sns.set_theme(style="whitegrid", context="notebook")
    save_figure(draw_dose(table, 1 / psi), out_dir / "dose_response.png")
    summary = []
    for (credit, share), g in table.groupby(["credit", "share"]) if len(table) else ():
        m, h, n = mean_ci(g.fine_agreement)
        summary.append({"credit": credit, "share": share, "fine agreement": m, "ci95": h, "seeds": n})
    planned = oracle_runs(params, profile)
    missing = (
        f"**{planned - len(table)} of {planned} oracle runs have not finished** and are not shown "
        f"(`rlaux dispatch --profile {profile}`).\n\n"
        if len(table) < planned
        else ""
    )
    write_text(
        out_dir / "dose_response.md",
        "# Oracle dose-response\n\n"
        + missing
        + "Fine agreement (sampled labels = human fine labels) over each run's last "
        f"{AGREEMENT_EPOCHS} epochs, mean over seeds with the half-width of its 95% t-interval; chance is 1/ψ = "
        f"{1 / psi:.2f}.\n\n![dose-response](dose_response.png)\n\n" + md(pd.DataFrame(summary)),
    )
    return table
