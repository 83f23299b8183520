"""The paper's claims beside PosLab's shipped measurements: one row per claim, its verdict by a stated rule.

Every number is read from the shipped measurement files (``assets/*/*.json``), never typed: the README's
"Findings at a glance" table and the generated blocks of ``docs/findings.md`` are written from these rows::

    python -m ui.claims            # print the table
    python -m ui.claims --write    # rewrite the blocks between the marker lines in README.md and docs/findings.md
"""
from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.core.stats import mean_interval, pct_interval
from engine.core.storage import ASSETS
from engine.seg.fidelity import Fidelity

ROOT = ASSETS.parent
FINDINGS = "docs/findings.md"
HOLDS, PARTLY, FAILS = "holds", "partly", "does not"
# Table 1 object: the object "largely survives" the shuffle when PermuteNet is within this many points of GAPNet.
OBJECT_SURVIVES_POINTS = 15.0
# Table 1 location: PermuteNet "far less" than GAPNet, by at least this many points at every grid.
LOCATION_GAP_POINTS = 20.0


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: its evidence there and here, the verdict and why, and the sample behind it."""

    anchor: str  # the section of docs/findings.md
    label: str  # the link's text
    name: str
    paper: str
    ours: str
    verdict: str
    why: str
    detail: str  # the numbers with sample sizes and intervals, for docs/findings.md

    def link(self) -> str:
        """Markdown link to the claim's section of the findings document."""
        return f"[{self.label}]({FINDINGS}#{self.anchor})"


def _json(path: str) -> list | dict:
    return json.loads((ASSETS / path).read_text())


def _pct(value: float) -> str:
    return f"{value:.1f}"


def _table1(task: str) -> dict[tuple[str, int], dict]:
    """Shipped Table 1 rows of ``task`` with zero padding, by (net, grid)."""
    return {(r["net"], r["grid"]): r for r in _json("probe/table1.json") if r["task"] == task and r["padding"] == "zero"}


def _interval(row: dict) -> str:
    low, high = pct_interval(row["accuracy"], row["samples"])
    return f"{row['accuracy']:.1f} [{low:.1f}, {high:.1f}]"


def _table1_detail(rows: dict[tuple[str, int], dict], grids: list[int], extra: str = "") -> str:
    lines = ["| grid | GAPNet, % [95% CI] | PermuteNet, % [95% CI] | paper GAPNet / PermuteNet | canvases |" + extra,
             "|---|---|---|---|---|" + ("---|" if extra else "")]
    for g in grids:
        gap, perm = rows[("GAPNet", g)], rows[("PermuteNet", g)]
        tail = f" {_pct(perm['sum_only'])} |" if extra else ""
        lines.append(f"| {g}x{g} | {_interval(gap)} | {_interval(perm)} | {gap['paper']:.1f} / {perm['paper']:.1f} | "
                     f"{perm['samples']:,} |{tail}")
    return "\n".join(lines)


def table1_location() -> Claim:
    """GAPNet reads the cell after GAP; PermuteNet, whose channels are shuffled per call, far less."""
    rows, grids = _table1("location"), [3, 5, 7]
    gap = [rows[("GAPNet", g)]["accuracy"] for g in grids]
    perm = [rows[("PermuteNet", g)]["accuracy"] for g in grids]
    paper = [rows[("PermuteNet", g)]["paper"] for g in grids]
    holds = min(gap) >= 99 and all(a - b >= LOCATION_GAP_POINTS for a, b in zip(gap, perm))
    return Claim("table-1-location", "Table 1 location", "Table 1 location: GAPNet reads the cell, PermuteNet far less",
                 f"PermuteNet {' / '.join(map(_pct, paper))}% (GAPNet 100) at 3x3 / 5x5 / 7x7",
                 f"PermuteNet {' / '.join(map(_pct, perm))}% (GAPNet {' / '.join(map(_pct, gap))})",
                 HOLDS if holds else FAILS,
                 "the cell survives GAP in channel order; a per-call shuffle loses most of it",
                 _table1_detail(rows, grids))


def table1_object() -> Claim:
    """What the object is survives the shuffle: PermuteNet's object accuracy close to GAPNet's."""
    rows, grids = _table1("object"), [3, 5, 7]
    gap = [rows[("GAPNet", g)]["accuracy"] for g in grids]
    perm = [rows[("PermuteNet", g)]["accuracy"] for g in grids]
    sums = [rows[("PermuteNet", g)]["sum_only"] for g in grids]
    survives = [a - b <= OBJECT_SURVIVES_POINTS for a, b in zip(gap, perm)]
    verdict = HOLDS if all(survives) else PARTLY if any(survives) else FAILS
    paper_perm = [rows[("PermuteNet", g)]["paper"] for g in grids]
    paper_gap = [rows[("GAPNet", g)]["paper"] for g in grids]
    return Claim("table-1-object", "Table 1 object", "Table 1 object: what the object is survives the shuffle",
                 f"PermuteNet {' / '.join(map(_pct, paper_perm))}% (GAPNet {' / '.join(map(_pct, paper_gap))})",
                 f"PermuteNet {' / '.join(map(_pct, perm))}% (GAPNet {' / '.join(map(_pct, gap))})", verdict,
                 f"a shuffled head reads only the channel sum (sum alone: {' / '.join(map(_pct, sums))}%)",
                 _table1_detail(rows, grids, " PermuteNet from the channel sum alone, % |"))


def table2() -> Claim:
    """AugShift raises shift consistency (Cons.8) at about the same Top-1, in the few-images-per-class regime."""
    rows = {r["method"]: r for r in _json("shift/table2.json") if r["dataset"] == "shapes100"}
    base, aug = rows["baseline"], rows["augshift"]
    gain, paper_gain = aug["cons8"] - base["cons8"], base["paper_c100_cons8"] and aug["paper_c100_cons8"] - base["paper_c100_cons8"]
    same_top1 = aug["top1"] >= base["top1"] - 1
    verdict = HOLDS if same_top1 and gain >= paper_gain / 2 else PARTLY if same_top1 and gain > 0 else FAILS
    lines = ["| method | Top-1, % [95% CI] | Cons.8, % [95% CI] | paper CIFAR-100 Top-1 / Cons.8 | test images |",
             "|---|---|---|---|---|"]
    for method, r in rows.items():
        (t_lo, t_hi), (c_lo, c_hi) = pct_interval(r["top1"], r["samples"]), pct_interval(r["cons8"], r["samples"])
        lines.append(f"| {method} | {r['top1']:.1f} [{t_lo:.1f}, {t_hi:.1f}] | {r['cons8']:.1f} [{c_lo:.1f}, {c_hi:.1f}] | "
                     f"{r['paper_c100_top1']:.1f} / {r['paper_c100_cons8']:.1f} | {r['samples']:,} |")
    return Claim("table-2-shift-consistency", "Table 2", "Table 2: AugShift raises shift consistency at equal accuracy",
                 f"CIFAR-100 Cons.8 {base['paper_c100_cons8']:.1f} -> {aug['paper_c100_cons8']:.1f} (+{paper_gain:.1f}), "
                 f"Top-1 {base['paper_c100_top1']:.1f} -> {aug['paper_c100_top1']:.1f}",
                 f"shapes-100 Cons.8 {base['cons8']:.1f} -> {aug['cons8']:.1f} ({gain:+.1f}), "
                 f"Top-1 {base['top1']:.1f} -> {aug['top1']:.1f}", verdict,
                 "right direction at equal Top-1, a smaller gain than the paper's" if verdict == PARTLY else
                 "the gain at equal Top-1 is at least half the paper's" if verdict == HOLDS else
                 "no consistency gain at equal Top-1",
                 "\n".join(lines))


def _fidelity(role: str) -> Fidelity:
    return Fidelity.from_json(_json(f"seg/fidelity_{role}.json"))


def _top_n_detail(fid: Fidelity, role: str) -> str:
    lines = [f"{role} ({fid.images} val scenes, {len(fid.top_n[0].random)} random draws, mIoU %):", "",
             "| N zeroed | flip-ranked | random mean [95% CI] | random min-max | largest N |", "|---|---|---|---|---|"]
    for t in fid.top_n:
        mean, lo, hi = mean_interval(t.random)
        lines.append(f"| {t.n} ({t.fraction:.0%}) | {100 * t.ranked:.1f} | {100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] "
                     f"| {100 * min(t.random):.1f}-{100 * max(t.random):.1f} | {100 * t.magnitude:.1f} |")
    return "\n".join(lines)


def fig4_top() -> Claim:
    """Zeroing the top flip-ranked latent channels hurts mIoU more than zeroing as many random ones."""
    default, control = _fidelity("default"), _fidelity("control")
    top, ctrl = default.top_n[-1], control.top_n[-1]
    below = [t.below_every_draw for t in default.top_n]
    verdict = HOLDS if all(below) else PARTLY if any(below) else FAILS
    control_too = ctrl.below_every_draw
    why = ("but the flip-trained control shows it too "
           f"({100 * ctrl.ranked:.1f} vs {100 * ctrl.random_mean:.1f}): here it measures size" if control_too else
           "the flip-trained control does not show it: the ranking follows position")
    return Claim("fig-4-top", "Fig. 4 top", "Fig. 4 top: zeroing top flip-ranked channels hurts more than random",
                 "top 500 of 2048: 64.7 vs 70.5 mIoU",
                 f"top {top.n} of {default.channels}: {100 * top.ranked:.1f} vs {100 * top.random_mean:.1f} "
                 f"({'below all' if top.below_every_draw else 'not below all'} {len(top.random)} draws)",
                 verdict, why, _top_n_detail(default, "default") + "\n\n" + _top_n_detail(control, "control"))


def fig4_bottom() -> Claim:
    """The first quarter of the flip ranking hurts more than the last quarter."""
    fid = _fidelity("default")
    eighths = " / ".join(f"{100 * v:.1f}" for _, _, v in fid.eighths)
    return Claim("fig-4-bottom", "Fig. 4 bottom", "Fig. 4 bottom: higher-ranked channels hurt more", "first ranks far worse than last",
                 f"first vs last quarter: {100 * fid.first_quarter:.1f} vs {100 * fid.last_quarter:.1f} mIoU",
                 HOLDS if fid.first_quarter < fid.last_quarter else FAILS,
                 "in a sparse latent the flip ranking follows channel size",
                 f"default, {fid.images} val scenes: mIoU % with one eighth of the ranking zeroed, first to last: {eighths} "
                 f"(no ablation {100 * fid.baseline['all']:.1f}).")


def fig6() -> Claim:
    """Left-ranked channels (Eq. 3) hurt the left half of the image most, right-ranked the right half."""
    fid = _fidelity("default")
    holds = [r.left_gap > 0 and r.right_gap > 0 for r in fid.regional]
    r = next(r for r in fid.regional if r.fraction == 0.1)
    lines = ["| N zeroed | left half: left- vs right-ranked | right half: right- vs left-ranked | both halves in the paper's "
             "direction |", "|---|---|---|---|"]
    for reg, ok in zip(fid.regional, holds):
        lines.append(f"| {reg.n} ({reg.fraction:.0%}) | {100 * reg.left_half['left']:.1f} vs {100 * reg.left_half['right']:.1f} "
                     f"| {100 * reg.right_half['right']:.1f} vs {100 * reg.right_half['left']:.1f} | {'yes' if ok else 'no'} |")
    return Claim("fig-6", "Fig. 6", "Fig. 6: left-ranked channels hurt the left half most", "left-ranked worse on the left half",
                 f"left half at {r.fraction:.0%}: left-ranked {100 * r.left_half['left']:.1f} vs right-ranked "
                 f"{100 * r.left_half['right']:.1f}",
                 HOLDS if all(holds) else PARTLY if any(holds) else FAILS,
                 "ranked channels act on the whole image, both halves alike",
                 f"default, {fid.images} val scenes, mIoU % of each half:\n\n" + "\n".join(lines))


def decode_rows() -> list[dict]:
    """The cell decoded from a 3x3 canvas's final GAP vector, in channel order and permuted: the shipped object-only
    classifier, then the real network and its untrained twin where measured (accuracy %, 95% interval, sample)."""
    rows = []
    for r in _json("channel_code/decode.json"):
        if (r["net"], r["layer"], r["grid"], r["trained_grid"]) == ("object-classifier", "layer4", 3, 3) \
                and r["readout"] in ("ordered", "permuted"):
            rows.append({"network": "object-classifier", "order": r["readout"] == "ordered", "accuracy": r["accuracy"],
                         "interval": pct_interval(r["accuracy"], r["test"]), "chance": r["chance"], "n": r["test"]})
    real = ASSETS / "channel_code" / "real_network.json"
    if real.is_file():
        rows += [{"network": r["network"], "order": r["readout"] == "order", "accuracy": r["accuracy"],
                  "interval": tuple(r["interval"]), "chance": r["chance"], "n": r["n"]}
                 for r in json.loads(real.read_text()) if r.get("grid") == 3]
    return rows


def decodable() -> Claim:
    """A linear probe reads the cell from the final GAP vector of a classifier trained only for the object."""
    rows = decode_rows()
    order, perm = (next(r for r in rows if r["network"] == "object-classifier" and r["order"] is o) for o in (True, False))
    holds = order["accuracy"] >= 2 * order["chance"] and order["accuracy"] - perm["accuracy"] >= 20
    lines = ["| network (3x3) | readout | accuracy, % [95% CI] | chance | test vectors |", "|---|---|---|---|---|"]
    lines += [f"| {r['network']} | {'channel order' if r['order'] else 'permuted'} | {r['accuracy']:.1f} "
              f"[{r['interval'][0]:.1f}, {r['interval'][1]:.1f}] | {r['chance']:.1f} | {r['n']} |" for r in rows]
    return Claim("position-decodable-from-gap", "decodable", "Position is decodable from GAP of a classifier",
                 "pretrained classifiers carry position in channel order (supplement)",
                 f"object-only classifier: {order['accuracy']:.1f}% (permuted {perm['accuracy']:.1f}%, chance "
                 f"{order['chance']:.1f}%)", HOLDS if holds else FAILS,
                 "a linear probe reads the cell from the GAP vector in channel order", "\n".join(lines))


def real_network() -> Claim | None:
    """The same decode on a classifier trained elsewhere on real images (PP-OCR's text-direction network), if measured."""
    path = ASSETS / "channel_code" / "real_network.json"
    if not path.is_file():
        return None
    rows = {(r["network"], r.get("grid"), r.get("readout")): r for r in json.loads(path.read_text())}
    order, perm = rows[("rapidocr-cls", 3, "order")], rows[("rapidocr-cls", 3, "permuted")]
    untrained = rows[("rapidocr-cls:untrained", 3, "order")]
    holds = order["accuracy"] >= 80 and order["accuracy"] - perm["accuracy"] >= 20
    return Claim("position-decodable-from-gap", "real network", "A real network, not trained here (PP-OCR text direction)",
                 "pretrained classifiers carry position in channel order (supplement)",
                 f"3x3: {order['accuracy']:.1f}% in order vs {perm['accuracy']:.1f}% permuted (chance {order['chance']:.1f}%); "
                 f"untrained {untrained['accuracy']:.1f}%", HOLDS if holds else FAILS,
                 "training sharpens a code the architecture already starts with", "")


def mirror_cost() -> Claim:
    """The segmentation model relies on absolute horizontal position: mirroring the scenes costs it mIoU."""
    default, control = _fidelity("default"), _fidelity("control")
    cost, control_cost = 100 * default.mirror_cost, 100 * control.mirror_cost
    return Claim("mirror-cost", "Mirror cost", "Segmentation relies on absolute position",
                 "significant reliance (not measured as a mirror cost)",
                 f"mirrored scenes cost {cost:.1f} mIoU (flip-trained control {round(control_cost, 1) + 0.0:.1f})",
                 HOLDS if cost >= 5 and cost > control_cost + 5 else FAILS,
                 "trained without flips, the model tells median from sidewalk by side",
                 f"{default.images} val scenes, all-image mIoU %: default {100 * default.baseline['all']:.1f} -> mirrored "
                 f"{100 * default.mirrored['all']:.1f}; control {100 * control.baseline['all']:.1f} -> "
                 f"{100 * control.mirrored['all']:.1f}.")


CLAIMS: tuple[Callable[[], Claim | None], ...] = (table1_location, table1_object, table2, fig4_top, fig4_bottom, fig6,
                                                   decodable, real_network, mirror_cost)


def claims() -> list[Claim]:
    """Every claim measured by the shipped files, in the README's order."""
    return [c for c in (make() for make in CLAIMS) if c is not None]


def table(rows: list[Claim]) -> str:
    """The README's "Findings at a glance" table."""
    lines = ["| claim | paper | PosLab | verdict | why | more |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {c.name} | {c.paper} | {c.ours} | {c.verdict} | {c.why} | {c.link()} |" for c in rows]
    return "\n".join(lines)


def fill(text: str, name: str, block: str) -> str:
    """``text`` with the lines between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` replaced by ``block``."""
    pattern = re.compile(rf"(<!-- {re.escape(name)}:begin -->\n)(?:.*?\n)?(<!-- {re.escape(name)}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- {name}:begin -->' ... '<!-- {name}:end -->' markers")
    return pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text)


def documents(rows: list[Claim], readme: str, findings: str) -> tuple[str, str]:
    """README and findings text with every generated block rewritten from ``rows``."""
    readme = fill(readme, "findings", table(rows))
    for c in rows:
        if c.detail:
            findings = fill(findings, c.anchor, f"**{c.verdict}** · paper: {c.paper} · PosLab: {c.ours}\n\n{c.detail}")
    return readme, findings


def main(argv: list[str] | None = None) -> None:
    """Print the claims table, or with ``--write`` rewrite the generated blocks of README.md and docs/findings.md."""
    parser = argparse.ArgumentParser(prog="python -m ui.claims", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md and docs/findings.md in place")
    args = parser.parse_args(argv)
    rows = claims()
    if not args.write:
        print(table(rows))
        return
    readme_path, findings_path = ROOT / "README.md", ROOT / FINDINGS
    readme, findings = documents(rows, readme_path.read_text(), findings_path.read_text())
    readme_path.write_text(readme)
    findings_path.write_text(findings)
    print(f"wrote {readme_path.name} and {FINDINGS}")


if __name__ == "__main__":
    main()
