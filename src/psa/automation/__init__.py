"""Workflow automation runtime: registered actions, published JSON definitions, durable runs on Temporal."""
