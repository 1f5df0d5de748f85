"""Controllers tie hardware to decisions: portal exit control, door supervision, destruction, inventory."""
