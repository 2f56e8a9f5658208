"""Job images: build contexts, the Dockerfile recipe, content-hash tags, build and push."""
