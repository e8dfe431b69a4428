"""Small models with random weights that the demo, the README and the tests use."""
