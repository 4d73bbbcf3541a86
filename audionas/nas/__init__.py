"""Neural architecture search: DARTS cells (`nas.darts`), one-shot supernets (`nas.oneshot`)."""
