"""Pure decisions of the cluster backend: API objects (plain dicts) in, run states and views out."""
