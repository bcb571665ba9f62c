"""Training curves as PNG."""

from __future__ import annotations

from pathlib import Path

from graphrec.fs import atomic_path


def plot_history(history: list[dict[str, float]], path: str | Path, metric: str = "valid_ndcg@20", title: str = "") -> Path:
    """Loss and a validation metric per epoch, side by side, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["loss"] for h in history], color="tab:blue")
    ax1.set(xlabel="epoch", ylabel="train loss (BPR + L2)", title="loss")
    points = [(h["epoch"], h[metric]) for h in history if metric in h]
    if points:
        ax2.plot(*zip(*points, strict=True), color="tab:orange", marker=".")
        best = max(points, key=lambda p: p[1])
        ax2.axvline(best[0], color="grey", linestyle=":", label=f"best {best[1]:.4f} @ {best[0]}")
        ax2.legend(loc="lower right")
    ax2.set(xlabel="epoch", ylabel=metric.replace("valid_", "valid "), title=metric.replace("valid_", "validation "))
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
