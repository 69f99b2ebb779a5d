"""Code of the BERT chapters, extracted from the chapter sources; import `d2l_extras.mxnet` or `d2l_extras.torch`."""
