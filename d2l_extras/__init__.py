"""Code of the BERT chapters, extracted from the chapter sources.

Import `d2l_extras.mxnet` or `d2l_extras.torch`; `d2l_extras.wikitext2` fetches the data.
"""
