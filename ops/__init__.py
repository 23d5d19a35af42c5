"""Ops tools: explain a case, rebuild read-model rows from workflows, check a deployment."""
