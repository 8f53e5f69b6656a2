"""Throwaway database servers: start, describe, run the dump tools, stop, always."""
