"""Image augmentation and class-activation maps."""
