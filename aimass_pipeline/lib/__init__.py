"""Plain library code behind the assets: no Dagster imports here."""
