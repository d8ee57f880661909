"""Privacy family: the personal-data registry (this branch); the requests workflow lands
beside it (the integrator keeps the workflow branch's version of this file)."""
