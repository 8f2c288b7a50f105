"""The implementations behind `aimass` subcommands (the parser lives in aimass_pipeline.cli)."""
