"""The papers' published figures that audionas sets beside a run's own: the KWS paper's Table 2 (`audionas
report --paper`) and the ASC paper's class-wise Table 2 (`audionas evaluate --paper`)."""

# The KWS paper's Table 2 (accuracy %, params K); baselines marked † there are from their own papers.
# NAS2 12/16's 281K repeats NAS1 12/16's (likely a misprint: NAS2's cells have more weights): as printed.
PAPER_ROWS = [
    ("Res15 (paper†)", "-", "-", 95.8, 239), ("TC-ResNet14-1.5 (paper†)", "-", "-", 96.6, 305),
    ("SincConv+DSConv (paper†)", "-", "-", 96.6, 122), ("CENet-GCN-40 (paper†)", "-", "-", 96.8, 72.3),
    ("NAS1 (paper)", 6, 16, 96.74, 107), ("NAS1 (paper)", 6, 24, 96.90, 223),
    ("NAS1 (paper)", 6, 36, 96.96, 474), ("NAS1 (paper)", 12, 16, 97.06, 281),
    ("NAS2 (paper)", 6, 16, 96.74, 182), ("NAS2 (paper)", 6, 24, 96.86, 400),
    ("NAS2 (paper)", 6, 36, 97.22, 886), ("NAS2 (paper)", 12, 16, 96.81, 281),
]

# The ASC paper's Table 2: class-wise F1 (%) on the DCASE2018 task 5 evaluation set, its per-channel macro-F1
# (B-s: the baseline, single mode; N-s: NASC-net, single mode; N-e: NASC-net, an ensemble of the 4 fold
# models), in the order of audionas.data.dcase2018.CLASSES; the last entry is the F1 score.
ASC_TABLE2 = {
    "B-s": [93.5, 95.7, 88.5, 88.0, 58.6, 97.4, 97.1, 100.0, 89.3, 89.8],
    "N-s": [93.1, 96.7, 89.2, 88.5, 59.3, 97.0, 97.4, 100.0, 88.9, 90.0],
    "N-e": [93.9, 96.1, 88.9, 88.7, 60.1, 97.8, 97.7, 100.0, 89.7, 90.3],
}
