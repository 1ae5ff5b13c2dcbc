"""The domain core shared by training and the service.

The comment record, text normalisation and features, the classifier pipeline,
the scorer with its verdicts and reasons, and artifact save/load. This package
imports nothing else of the project (a test keeps that true).
"""
