"""The drill itself: pytest files, one concern each, and expectations.toml (what good looks like)."""
