"""Code shared by the example jobs: arguments, seeding, saving models, metrics and plots."""
