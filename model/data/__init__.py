"""Data: find and check images in DeepGuardDB's layout or plain real/fake folders, split them without leaks, decode them, and feed tf.data with augmentation."""
