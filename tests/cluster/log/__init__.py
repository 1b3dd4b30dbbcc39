"""Tests of cluster.log (pure: tmp_path files, no sockets)."""
