"""Policy packs (one YAML file per manual) and their loader (loader.py: files, KEFU_POLICY_DIR, validation).

The loader may import models/ only; domain/ never reads files, it receives a loaded PolicyPack.
"""
