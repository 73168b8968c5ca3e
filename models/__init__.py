"""The shared core of syncjobs: documents, collections, settings and the database handle."""
