"""Native mode: the cluster as local processes, no Docker."""
