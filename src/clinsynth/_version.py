__version__ = "0.1.0"

#: Version of the model-bundle format. Bump when a saved model can no longer be read as before.
BUNDLE_FORMAT_VERSION = 1
