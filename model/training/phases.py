"""A training phase, the same in every flow (train, finetune, the adaptation recipe, the head search): one
optimiser setup (AdamW, cosine decay over the phase), and `fit()` timed per epoch with early stopping.

No TensorFlow import at the top: the adaptation recipe runs under Keras' PyTorch or JAX backend too."""

from __future__ import annotations

import logging
import sys
import time

import keras

log = logging.getLogger("realcheck")
WEIGHT_DECAY = 1e-4


def compile_for_training(model: keras.Model, learning_rate: float, steps: int) -> None:
    """AdamW with cosine decay over the phase's `steps`; binary cross-entropy; accuracy and ROC AUC."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch, kept in the history so model cards and notes can quote them."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def verbosity() -> int | str:
    """Progress bars on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def fit_phase(
    model, train_data, val_data, epochs: int, learning_rate: float, patience: int, phase: str
) -> dict:
    """One training phase with early stopping on validation loss; the best weights are restored."""
    if epochs == 0:
        return {}
    from realcheck.model.training import devices  # tf.data phases (train, finetune) run under TensorFlow

    compile_for_training(model, learning_rate, steps=epochs * int(train_data.cardinality()))
    devices.prepare_fit(model)
    callbacks = [EpochTimer()]
    if patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        )
    log.info("phase %s: %d epochs at learning rate %g", phase, epochs, learning_rate)
    history = model.fit(
        train_data, validation_data=val_data, epochs=epochs, callbacks=callbacks, verbose=verbosity()
    )
    return floats(history.history)


def floats(history: dict) -> dict[str, list[float]]:
    """A Keras history as plain floats for JSON."""
    return {key: [float(value) for value in values] for key, values in history.items()}
