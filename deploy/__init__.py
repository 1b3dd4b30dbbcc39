"""Deployment to hosts over SSH (asyncssh): inventory, plan, steps, service units."""
