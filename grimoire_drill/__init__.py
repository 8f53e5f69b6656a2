"""grimoire-drill: prove that Le Grimoire backups restore, every night."""

__version__ = "0.1.0"
