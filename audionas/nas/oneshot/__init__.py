"""One-shot NAS of the ASC paper: search space, FairNAS supernet, NSGA-II / random search, Figure 4."""
