"""``--plot out.png``: hit ratio against capacity, one curve per tier (and the total), with
matplotlib when it is installed. The swept capacity is the x axis (GB, or blocks when the sizes
were given in blocks; unlimited sizes have no place on it); when both tiers are swept, one panel
per SSD size with the CPU size on the x axis."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ...tier_planner import UNLIMITED


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _x(r: Dict[str, Any], tier: str) -> Optional[float]:
    """A row's size of ``tier`` on the axis: GB as asked, else blocks; None when unlimited."""
    if r[f"{tier}_gb"] is not None:
        return r[f"{tier}_gb"]
    blocks = r[f"{tier}_blocks"]
    return None if blocks >= UNLIMITED else blocks


def write(path: str, results: List[Dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    cpus = {r["cpu"] for r in results}
    ssds = sorted({r["ssd"] for r in results}, key=lambda label: _x(next(r for r in results if r["ssd"] == label), "ssd") or 0)
    along = "ssd" if len(cpus) == 1 and len(ssds) > 1 else "cpu"
    panels = [None] if along == "ssd" else ssds
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    for ax, ssd in zip(axes[0], panels):
        rows = [r for r in results if ssd is None or r["ssd"] == ssd]
        rows = sorted((r for r in rows if _x(r, along) is not None), key=lambda r: _x(r, along))
        x = [_x(r, along) for r in rows]
        for tier, style, label in (("cpu", "o-", "CPU"), ("ssd", "s-", "SSD"), ("total", "^--", "total")):
            if tier == "ssd" and not any(r["hit_ratio"]["ssd"] for r in rows):
                continue
            ax.plot(x, [100 * r["hit_ratio"][tier] for r in rows], style, label=label)
        in_gb = all(r[f"{along}_gb"] is not None for r in rows)
        ax.set_xlabel(f"{along.upper()} capacity ({'GB' if in_gb else 'blocks'})")
        ax.set_ylabel("prompt tokens loaded, not recomputed (%)")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.set_title(f"CPU {rows[0]['cpu']}" if along == "ssd" and rows else
                     f"SSD {ssd}" if ssd not in (None, "-") else "no SSD tier", fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
