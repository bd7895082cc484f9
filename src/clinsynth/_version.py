__version__ = "0.1.0"

#: Version of the model-bundle format. Bump when a saved model can no longer be read as before
#: (and add a reader of the old format to ``clinsynth.io._bundle._UPGRADES``).
#: 2: a schema's tables are whole table bundles (rules, dtypes, privacy ledger kept).
BUNDLE_FORMAT_VERSION = 2
