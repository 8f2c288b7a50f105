"""Privacy: erasing a data subject from every store, with a receipt that proves what was removed."""
