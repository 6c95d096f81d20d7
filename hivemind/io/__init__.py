"""Files in and out: records streamed to ``run.nc``, checkpoints, run directories and their
locks (and the resume-or-restart rule), atomic writes, anyone's trajectories for ``hivemind fit``."""
