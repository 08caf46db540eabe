"""HTTP routes: thin adapters from each route family's wire format to the pipeline."""
