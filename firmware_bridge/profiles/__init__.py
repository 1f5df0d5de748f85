"""Device profiles shipped with Custodian (TOML register maps; Custodian's own, not vendor maps)."""
