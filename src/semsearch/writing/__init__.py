"""Writing collections: the build (embed, checkpoint, fill the index) and the update (a new generation)."""
