"""What one execution does: run the source as a subprocess and write its records to the destination."""
