"""The live views a person sees while a reply streams (widgets in a kernel, text in a terminal)."""
