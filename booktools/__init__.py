"""Build tooling of the book: split chapter sources into notebooks, extract `#@save` code,
assemble the tabbed pages, and the Sphinx extension that renders framework tabs."""
