"""User-facing tools, each run as ``python -m vidrec.tools.<name>`` (fuse, ablate, bench,
conv_bench, vs_torch, preview, throughput, visualize_sgn, visualize_u2s, visualize_joint_lstm);
``plotting`` holds their shared matplotlib helpers."""
