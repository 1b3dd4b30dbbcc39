"""`dcmirror check`: what a link needs on each cluster (permissions, reachability), probed before it runs."""
