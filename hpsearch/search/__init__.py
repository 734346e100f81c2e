"""Search space, samplers, pruners and warm starts: a spec -> what Optuna samples and prunes with."""
