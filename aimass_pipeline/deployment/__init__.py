"""Lifecycle stage: deployment. A bento built from the champion."""
