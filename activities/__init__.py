"""Side effects, as methods of classes that receive their dependencies."""
