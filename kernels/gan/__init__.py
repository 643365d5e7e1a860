"""GAN drills' wrong parts (:mod:`kernels.gan.wrong`): the mutants beside ``models/`` right ones."""
