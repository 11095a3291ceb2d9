"""Training: the runs (train, finetune), the adaptation recipe, the Keras Tuner head search, backbone comparison, and the devices they run on."""
