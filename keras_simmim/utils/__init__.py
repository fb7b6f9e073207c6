"""Private helpers shared across keras_simmim."""
