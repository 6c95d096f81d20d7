"""Live mode: language-model agents conversing around a fixed anchor message (issue 5).

So far: the anchor's rule (``compliance``) and the per-round text metrics
(``metrics``); the model backend and ``hivemind live`` build on these.
"""
