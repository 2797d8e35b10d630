"""`voiceconv pretrain`: a base encoder trained on many singers, for `fit` to start from."""
