"""Where training runs: the tf.distribute strategy (the default device, local GPUs, or several workers), the
precision policy, and which worker writes the artifact.

Several workers: every process runs the same `realcheck train` command with its own `TF_CONFIG`
(https://www.tensorflow.org/guide/distributed_training#setting_up_the_tf_config_environment_variable).
The workers split each batch and average their gradients; the chief (worker 0, or the task of type "chief")
writes the artifact, the others write to a temporary folder that they remove when they finish.
"""

from __future__ import annotations

import functools
import json
import os

import keras
import tensorflow as tf

from realcheck.model.errors import RealCheckError

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
)


def make_strategy(kind: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy: several workers (`TF_CONFIG`), mirrored across local GPUs, or the default."""
    if kind == "multiworker":
        check_tf_config(os.environ.get("TF_CONFIG", ""))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored" or (kind == "auto" and len(tf.config.list_physical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def check_tf_config(text: str) -> None:
    """Refuse, in one line, a `TF_CONFIG` that is missing or does not place this task in its cluster."""
    if not text:
        raise RealCheckError(
            f"--distribute multiworker needs TF_CONFIG in the environment of every worker, for example {TF_CONFIG_EXAMPLE}"
        )
    try:
        config = json.loads(text)
        members = config["cluster"][config["task"]["type"]]
        if not 0 <= int(config["task"]["index"]) < len(members):
            raise IndexError("task index outside the cluster")
    except (ValueError, TypeError, KeyError, IndexError):
        raise RealCheckError(
            f"TF_CONFIG does not name a cluster and this task's place in it; expected for example {TF_CONFIG_EXAMPLE}"
        ) from None


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes the artifact (always, outside multi-worker training)."""
    if not is_multiworker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_name(strategy: tf.distribute.Strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}"


def prepare_fit(model: keras.Model) -> None:
    """Let a compiled model `fit()` under the strategy whose scope this runs in: nothing to do except with
    several workers.

    Keras 3.15's `fit()` fails under MultiWorkerMirroredStrategy in two places (keras-team/keras#20585):
    its pre-build reduces the first batch as one value, and it averages each scalar metric along an axis it
    does not have. The model's variables are already mirrored (it was built in the strategy's scope), so it
    is detached from the strategy (fit() then takes it from the scope it runs in, and builds while tracing),
    and its steps return each metric with a replica axis that the average removes again.
    """
    if not is_multiworker(tf.distribute.get_strategy()):
        return
    model._distribute_strategy = None
    if not hasattr(model.train_step, "__wrapped__"):
        model.train_step = _with_replica_axis(model.train_step)
        model.test_step = _with_replica_axis(model.test_step)


def _with_replica_axis(step):
    @functools.wraps(step)
    def wrapped(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    return wrapped


def configure_precision(mode: str) -> str:
    """mixed_float16 on GPU (or when forced); float32 on CPU where it would only be slower."""
    use_mixed = mode == "on" or (mode == "auto" and bool(tf.config.list_physical_devices("GPU")))
    policy = "mixed_float16" if use_mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def device_description() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return f"{len(gpus)} GPU(s): " + ", ".join(g.name for g in gpus) if gpus else "CPU"
